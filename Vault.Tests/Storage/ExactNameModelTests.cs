using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Vault.Tests.Storage;

/// <summary>
/// Model-based: random sequences of KV operations over names that collide under case folding,
/// Unicode normalisation, lookalikes, LIKE wildcards and prefixes of one another, run through a
/// real server and compared step by step with an in-memory model in which a name is its exact
/// string. The store is flushed to the data file and the server restarted at random points, so a
/// name that only collides once a change has left memory is caught.
/// </summary>
public sealed class ExactNameModelTests(ITestOutputHelper output)
{
    /// <summary>Segments under the test's root; each pair or group is one name to a careless store.</summary>
    private static readonly string[] Names =
    [
        "abc", "ABC", "Abc", "abc/x", "Abc/x", "ABC/y", "ab",
        "caf\u00e9", "cafe\u0301",              // NFC and NFD of café
        "\u0430bc",                             // Cyrillic а
        "a_c", "a_c/x", "a%c", "a%c/x", "abc_",  // LIKE wildcards
        "ss", "\u00df", "fi", "\ufb01",         // ß, the fi ligature
        "i", "I", "\u0131", "\u0130",           // dotless i, dotted I
        "k", "K", "\u212a",                     // Kelvin sign
    ];

    private static readonly string[] Folders = ["", "abc", "Abc", "ABC", "a_c", "a%c", "caf\u00e9"];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task RandomOperations_OverCollidingNames_MatchAnExactNameModel_AcrossFlushesAndRestarts(int seed)
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.UnsealAsync();
        var root = $"model-{Guid.NewGuid():N}";
        var model = new Dictionary<string, ModelSecret>(StringComparer.Ordinal);
        var random = new Random(seed);
        var counter = 0;

        for (var step = 0; step < 250; step++)
        {
            var name = Names[random.Next(Names.Length)];
            var path = $"{root}/{name}";
            var op = random.Next(100);
            var what = "";
            try
            {
                if (op < 40)
                {
                    var value = $"v{++counter}";
                    what = $"put {name} = {value}";
                    var put = await vault.Kv.PutAsync(new PutSecretRequest { Path = path, Data = { ["value"] = value } }, vault.As());
                    Assert.Equal((ulong)Put(model, path, value), put.Version);
                }
                else if (op < 60)
                {
                    what = $"get {name}";
                    await CheckGet(vault, model, path);
                }
                else if (op < 70)
                {
                    var folder = Folders[random.Next(Folders.Length)];
                    what = $"list '{folder}'";
                    await CheckList(vault, model, root, folder);
                }
                else if (op < 80)
                {
                    what = $"delete {name}";
                    var expected = Delete(model, path);
                    var call = vault.Kv.DeleteAsync(new DeleteSecretRequest { Path = path }, vault.As());
                    if (expected)
                    {
                        await call;
                    }
                    else
                    {
                        await Rpc.FailsWith(StatusCode.NotFound, () => call);
                    }
                }
                else if (op < 88)
                {
                    var version = (ulong)random.Next(1, 4);
                    what = $"destroy {name} v{version}";
                    var expected = Destroy(model, path, (long)version);
                    var call = vault.Kv.DestroyAsync(new DestroySecretRequest { Path = path, Versions = { version } }, vault.As());
                    if (expected)
                    {
                        await call;
                    }
                    else
                    {
                        await Rpc.FailsWith(StatusCode.NotFound, () => call);
                    }
                }
                else if (op < 93)
                {
                    what = $"delete metadata {name}";
                    var existed = model.Remove(path);
                    var call = vault.Kv.DeleteMetadataAsync(new DeleteMetadataRequest { Path = path }, vault.As());
                    if (existed)
                    {
                        await call;
                    }
                    else
                    {
                        await Rpc.FailsWith(StatusCode.NotFound, () => call);
                    }
                }
                else if (op < 97)
                {
                    what = "flush to the data file";
                    vault.FlushStore();
                    await CheckEverything(vault, model, root);
                }
                else
                {
                    what = "restart";
                    await vault.RestartAsync();
                    await vault.UnsealAsync();
                    await CheckEverything(vault, model, root);
                }
            }
            catch (Exception)
            {
                output.WriteLine($"seed {seed}, step {step}: {what}");
                throw;
            }
        }
        await vault.RestartAsync();
        await vault.UnsealAsync();
        await CheckEverything(vault, model, root);
    }

    private static async Task CheckEverything(TestVault vault, Dictionary<string, ModelSecret> model, string root)
    {
        foreach (var name in Names)
        {
            var path = $"{root}/{name}";
            await CheckGet(vault, model, path);
            if (model.TryGetValue(path, out var secret))
            {
                var meta = await vault.Kv.GetMetadataAsync(new GetMetadataRequest { Path = path }, vault.As());
                Assert.Equal((ulong)secret.Current, meta.CurrentVersion);
                Assert.Equal(
                    secret.Versions.Select(v => $"{v.Version}:{v.Destroyed}:{v.Deleted}"),
                    meta.Versions.Select(v => $"{v.Version}:{v.Destroyed}:{v.DeletedAt is not null}"));
            }
            else
            {
                await Rpc.FailsWith(StatusCode.NotFound, () => vault.Kv.GetMetadataAsync(new GetMetadataRequest { Path = path }, vault.As()));
            }
        }
        foreach (var folder in Folders)
        {
            await CheckList(vault, model, root, folder);
        }
    }

    private static async Task CheckGet(TestVault vault, Dictionary<string, ModelSecret> model, string path)
    {
        var expected = model.TryGetValue(path, out var secret) ? secret.Versions.Find(v => v.Version == secret.Current) : null;
        var call = vault.Kv.GetAsync(new GetSecretRequest { Path = path }, vault.As());
        if (expected is { Deleted: false, Destroyed: false })
        {
            var got = await call;
            Assert.Equal(expected.Value, got.Data["value"]);
            Assert.Equal(path, got.Path);
        }
        else
        {
            await Rpc.FailsWith(StatusCode.NotFound, () => call);
        }
    }

    private static async Task CheckList(TestVault vault, Dictionary<string, ModelSecret> model, string root, string folder)
    {
        var prefix = folder.Length == 0 ? $"{root}/" : $"{root}/{folder}/";
        var expected = model.Keys
            .Where(p => p.StartsWith(prefix, StringComparison.Ordinal))
            .Select(p => p[prefix.Length..])
            .Select(rest => rest.Contains('/', StringComparison.Ordinal) ? rest[..(rest.IndexOf('/', StringComparison.Ordinal) + 1)] : rest)
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToList();
        var listed = await vault.Kv.ListAsync(new ListSecretsRequest { Prefix = prefix }, vault.As());
        Assert.Equal(expected, listed.Keys);
    }

    private static long Put(Dictionary<string, ModelSecret> model, string path, string value)
    {
        if (!model.TryGetValue(path, out var secret))
        {
            model[path] = secret = new ModelSecret();
        }
        secret.Current++;
        secret.Versions.Add(new ModelVersion(secret.Current, value));
        while (secret.Versions.Count > 10)
        {
            secret.Versions.RemoveAt(0);
        }
        return secret.Current;
    }

    private static bool Delete(Dictionary<string, ModelSecret> model, string path)
    {
        if (!model.TryGetValue(path, out var secret))
        {
            return false;
        }
        secret.Versions.Find(v => v.Version == secret.Current)!.Deleted = true;
        return true;
    }

    private static bool Destroy(Dictionary<string, ModelSecret> model, string path, long version)
    {
        if (!model.TryGetValue(path, out var secret) || secret.Versions.Find(v => v.Version == version) is not { } entry)
        {
            return false;
        }
        entry.Destroyed = true;
        entry.Deleted = true;
        return true;
    }

    private sealed class ModelSecret
    {
        public long Current { get; set; }

        public List<ModelVersion> Versions { get; } = [];
    }

    private sealed class ModelVersion(long version, string value)
    {
        public long Version { get; } = version;

        public string Value { get; } = value;

        public bool Deleted { get; set; }

        public bool Destroyed { get; set; }
    }
}
