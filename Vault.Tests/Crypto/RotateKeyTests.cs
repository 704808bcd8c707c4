using LiteDB;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Crypto;

public sealed class RotateKeyTests
{
    [Fact]
    public async Task RotateKey_NewWritesUseNewKey_OldVersionsStillRead_AndRewrapLeavesNothingUnderTheOldKey()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        for (var i = 0; i < 300; i++)
        {
            await vault.Kv.PutAsync(new PutSecretRequest { Path = $"rk/s{i}", Data = { ["v"] = $"old-{i}" } }, vault.As());
        }
        Assert.Equal(1U, (await vault.System.StatusAsync(new StatusRequest())).KeyVersion);

        var rotated = await vault.System.RotateKeyAsync(new RotateKeyRequest(), vault.As());
        Assert.Equal(2U, rotated.KeyVersion);
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "rk/s0", Data = { ["v"] = "new-0" } }, vault.As());

        // Wait for the background rewrap to converge.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        StatusResponse status;
        while (((status = await vault.System.StatusAsync(new StatusRequest())).RewrapInProgress || status.RecordsPendingRewrap > 0) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
        Assert.Equal(0UL, status.RecordsPendingRewrap);
        Assert.Equal("old-0", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "rk/s0", Version = 1 }, vault.As())).Data["v"]);
        Assert.Equal("new-0", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "rk/s0" }, vault.As())).Data["v"]);
        Assert.Equal("old-299", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "rk/s299" }, vault.As())).Data["v"]);

        // On disk, after a restart: every record names key version 2, and all still decrypt.
        var kekVersions = new List<int>();
        await vault.RestartAsync(() =>
        {
            using var db = new LiteDatabase(new ConnectionString { Filename = Path.Combine(vault.DataDir, "vault.db") });
            kekVersions.AddRange(db.GetCollection("kv_versions").FindAll().Select(d => d["KekVersion"].AsInt32));
        });
        Assert.Equal(301, kekVersions.Count);
        Assert.All(kekVersions, v => Assert.Equal(2, v));
        await vault.UnsealAsync();
        Assert.Equal(2U, (await vault.System.StatusAsync(new StatusRequest())).KeyVersion);
        Assert.Equal("old-150", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "rk/s150" }, vault.As())).Data["v"]);
    }

    [Fact]
    public async Task ADamagedRecord_DoesNotStopTheRewrapOfTheOthers()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        for (var i = 0; i < 5; i++)
        {
            await vault.Kv.PutAsync(new PutSecretRequest { Path = $"rd/s{i}", Data = { ["v"] = $"v{i}" } }, vault.As());
        }
        await vault.RestartAsync(() =>
        {
            using var db = new LiteDatabase(new ConnectionString { Filename = Path.Combine(vault.DataDir, "vault.db") });
            var col = db.GetCollection("kv_versions");
            var doc = col.FindById($"rd/s0\n{1:D20}");
            var key = doc["WrappedDataKey"].AsBinary;
            key[^1] ^= 0xFF;
            doc["WrappedDataKey"] = key;
            col.Update(doc);
        });
        await vault.UnsealAsync();
        await vault.System.RotateKeyAsync(new RotateKeyRequest(), vault.As());
        var deadline = DateTime.UtcNow.AddSeconds(60);
        StatusResponse status;
        while ((status = await vault.System.StatusAsync(new StatusRequest())).RewrapInProgress && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
        Assert.False(status.RewrapInProgress);
        Assert.Equal(1UL, status.RecordsPendingRewrap);
        await Rpc.FailsWith(global::Grpc.Core.StatusCode.DataLoss, () => vault.Kv.GetAsync(new GetSecretRequest { Path = "rd/s0" }, vault.As()));
        Assert.Equal("v4", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "rd/s4" }, vault.As())).Data["v"]);
    }
}
