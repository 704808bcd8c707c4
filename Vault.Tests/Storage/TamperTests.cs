using Grpc.Core;
using LiteDB;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Storage;

/// <summary>A stored record altered on disk fails to decrypt (DATA_LOSS); it never yields wrong data.</summary>
public sealed class TamperTests
{
    private const string VersionsCollection = "kv_versions";

    [Fact]
    public async Task FlippingAnyByteOfAStoredRecord_MakesTheReadFailWithDataLoss()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "tamper/probe", Data = { ["v"] = "genuine" } }, vault.As());
        var ciphertextLength = 0;
        var keyLength = 0;
        await vault.RestartAsync(() =>
        {
            ciphertextLength = ReadRecord(vault, "tamper/probe")["Ciphertext"].AsBinary.Length;
            keyLength = ReadRecord(vault, "tamper/probe")["WrappedDataKey"].AsBinary.Length;
        });
        Assert.True(ciphertextLength > 28 && keyLength > 28);
        await vault.UnsealAsync();
        var positions = Enumerable.Range(0, ciphertextLength).Select(i => (Field: "Ciphertext", Index: i))
            .Concat(Enumerable.Range(0, keyLength).Select(i => (Field: "WrappedDataKey", Index: i)))
            .ToList();
        // One record per position, all holding the same value (so the same lengths), and one more
        // left alone: each tampered record has exactly one flipped bit, and every byte position of
        // the ciphertext and of the wrapped data key is flipped in one of them — one restart for
        // all, where a restart per position took a minute on a busy machine.
        for (var i = 0; i < positions.Count; i++)
        {
            await vault.Kv.PutAsync(new PutSecretRequest { Path = $"tamper/{i}", Data = { ["v"] = "genuine" } }, vault.As());
        }

        await vault.RestartAsync(() =>
        {
            for (var i = 0; i < positions.Count; i++)
            {
                Assert.Equal(ciphertextLength, ReadRecord(vault, $"tamper/{i}")["Ciphertext"].AsBinary.Length);
                FlipBit(vault, $"tamper/{i}", positions[i].Field, positions[i].Index);
            }
        });
        await vault.UnsealAsync();

        for (var i = 0; i < positions.Count; i++)
        {
            var ex = await Rpc.FailsWith(StatusCode.DataLoss, () => vault.Kv.GetAsync(new GetSecretRequest { Path = $"tamper/{i}" }, vault.As()));
            Assert.DoesNotContain("genuine", ex.Status.Detail, StringComparison.Ordinal);
        }
        Assert.Equal("genuine", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "tamper/probe" }, vault.As())).Data["v"]);
    }

    [Fact]
    public async Task SwappingTheCiphertextsOfTwoRecords_MakesBothReadsFail()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "swap/a", Data = { ["v"] = "alpha" } }, vault.As());
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "swap/b", Data = { ["v"] = "bravo" } }, vault.As());
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "swap/a", Data = { ["v"] = "alpha-2" } }, vault.As());
        await vault.RestartAsync(() =>
        {
            using var db = Open(vault);
            var col = db.GetCollection(VersionsCollection);
            var a = col.FindById(Id("swap/a", 1));
            var b = col.FindById(Id("swap/b", 1));
            (a["_id"], b["_id"]) = (b["_id"], a["_id"]);
            col.Update(a);
            col.Update(b);
            // And a version moved within one path: version 2's record placed at version 1.
            var a2 = col.FindById(Id("swap/a", 2));
            a2["_id"] = Id("swap/a", 1);
            col.Upsert(a2);
        });
        await vault.UnsealAsync();
        await Rpc.FailsWith(StatusCode.DataLoss, () => vault.Kv.GetAsync(new GetSecretRequest { Path = "swap/b" }, vault.As()));
        await Rpc.FailsWith(StatusCode.DataLoss, () => vault.Kv.GetAsync(new GetSecretRequest { Path = "swap/a", Version = 1 }, vault.As()));
        Assert.Equal("alpha-2", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "swap/a" }, vault.As())).Data["v"]);
    }

    [Fact]
    public async Task EditingATokenOrAPolicyInTheDataFile_DoesNotGrantAnything()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "crown/jewels", Data = { ["v"] = "jewels" } }, vault.As());
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "narrow", Rules = { new PolicyRule { Path = "kv/public/*", Capabilities = { "read" } } } } }, vault.As());
        var narrow = await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "narrow" } }, vault.As());
        var other = await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "narrow" } }, vault.As());

        await vault.RestartAsync(() =>
        {
            using var db = Open(vault);
            // Give one token the root policy, and widen the policy the other one holds.
            var tokens = db.GetCollection("tokens");
            var doc = tokens.FindOne(Query.EQ("Accessor", narrow.Info.Accessor));
            doc["Policies"] = new BsonArray(new BsonValue[] { "root" });
            tokens.Update(doc);
            var policies = db.GetCollection("policies");
            var policy = policies.FindById("narrow");
            policy["Rules"][0]["Path"] = "kv/*";
            policies.Update(policy);
        });
        await vault.UnsealAsync();
        await Rpc.FailsWith(StatusCode.DataLoss, () => vault.Kv.GetAsync(new GetSecretRequest { Path = "crown/jewels" }, vault.As(narrow.Token)));
        await Rpc.FailsWith(StatusCode.DataLoss, () => vault.Kv.GetAsync(new GetSecretRequest { Path = "crown/jewels" }, vault.As(other.Token)));
        await Rpc.FailsWith(StatusCode.DataLoss, () => vault.Policies.GetAsync(new GetPolicyRequest { Name = "narrow" }, vault.As()));
        Assert.Equal("jewels", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "crown/jewels" }, vault.As())).Data["v"]);
    }

    [Fact]
    public async Task ARecordSavedBeforeDeleteMetadata_CannotBeReplayedUnderTheRecreatedPath()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "replay/s", Data = { ["v"] = "old-secret" } }, vault.As());
        BsonDocument? saved = null;
        await vault.RestartAsync(() => saved = ReadRecord(vault, "replay/s"));
        await vault.UnsealAsync();
        await vault.Kv.DeleteMetadataAsync(new DeleteMetadataRequest { Path = "replay/s" }, vault.As());
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "replay/s", Data = { ["v"] = "new-secret" } }, vault.As());
        await vault.RestartAsync(() =>
        {
            using var db = Open(vault);
            db.GetCollection(VersionsCollection).Upsert(saved!);
        });
        await vault.UnsealAsync();
        await Rpc.FailsWith(StatusCode.DataLoss, () => vault.Kv.GetAsync(new GetSecretRequest { Path = "replay/s", Version = 1 }, vault.As()));
    }

    private static string Id(string path, long version) => $"{path}\n{version:D20}";

    private static LiteDatabase Open(TestVault vault) =>
        new(new ConnectionString { Filename = Path.Combine(vault.DataDir, "vault.db"), Connection = ConnectionType.Direct });

    private static BsonDocument ReadRecord(TestVault vault, string path)
    {
        using var db = Open(vault);
        return db.GetCollection(VersionsCollection).FindById(Id(path, 1));
    }

    private static void FlipBit(TestVault vault, string path, string field, int index) => Mutate(vault, doc =>
    {
        var bytes = doc[field].AsBinary;
        bytes[index] ^= 0x01;
        doc[field] = bytes;
    }, path);

    private static void Mutate(TestVault vault, Action<BsonDocument> change, string path)
    {
        using var db = Open(vault);
        var col = db.GetCollection(VersionsCollection);
        var doc = col.FindById(Id(path, 1));
        change(doc);
        col.Update(doc);
    }
}
