using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Secrets;

public sealed class KvSemanticsTests(SharedVault fixture) : IClassFixture<SharedVault>
{
    private TestVault Vault => fixture.Vault;

    private static string NewPath() => $"kv/{Guid.NewGuid():N}/secret";

    private async Task<ulong> Put(string path, string value, ulong? cas = null)
    {
        var request = new PutSecretRequest { Path = path };
        request.Data["v"] = value;
        if (cas is { } c)
        {
            request.Cas = c;
        }
        return (await Vault.Kv.PutAsync(request, Vault.As())).Version;
    }

    private async Task<string> Read(string path, ulong version = 0) =>
        (await Vault.Kv.GetAsync(new GetSecretRequest { Path = path, Version = version }, Vault.As())).Data["v"];

    [Fact]
    public async Task Put_VersionsIncrease_AndEachVersionReadsBack()
    {
        var path = NewPath();
        Assert.Equal(1UL, await Put(path, "one"));
        Assert.Equal(2UL, await Put(path, "two"));
        Assert.Equal(3UL, await Put(path, "three"));
        Assert.Equal("three", await Read(path));
        Assert.Equal("one", await Read(path, 1));
        Assert.Equal("two", await Read(path, 2));
        await Rpc.FailsWith(StatusCode.NotFound, () => Vault.Kv.GetAsync(new GetSecretRequest { Path = path, Version = 4 }, Vault.As()));
    }

    [Fact]
    public async Task CheckAndSet_Mismatch_IsRefused_AndChangesNothing()
    {
        var path = NewPath();
        Assert.Equal(1UL, await Put(path, "first", cas: 0));
        var conflict = await Rpc.FailsWith(StatusCode.Aborted, () => Vault.Kv.PutAsync(new PutSecretRequest { Path = path, Cas = 0, Data = { ["v"] = "lost" } }, Vault.As()));
        Assert.Contains("check-and-set", conflict.Status.Detail, StringComparison.Ordinal);
        await Rpc.FailsWith(StatusCode.Aborted, () => Vault.Kv.PutAsync(new PutSecretRequest { Path = path, Cas = 5, Data = { ["v"] = "lost" } }, Vault.As()));
        Assert.Equal("first", await Read(path));
        Assert.Equal(1UL, (await Vault.Kv.GetMetadataAsync(new GetMetadataRequest { Path = path }, Vault.As())).CurrentVersion);
        Assert.Equal(2UL, await Put(path, "second", cas: 1));
    }

    [Fact]
    public async Task CasRequired_RefusesAPutWithoutCas()
    {
        var path = NewPath();
        await Put(path, "a");
        await Vault.Kv.UpdateMetadataAsync(new UpdateMetadataRequest { Path = path, CasRequired = true }, Vault.As());
        var ex = await Rpc.FailsWith(StatusCode.InvalidArgument, () => Vault.Kv.PutAsync(new PutSecretRequest { Path = path, Data = { ["v"] = "b" } }, Vault.As()));
        Assert.StartsWith("cas:", ex.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(2UL, await Put(path, "b", cas: 1));
    }

    [Fact]
    public async Task Delete_HidesTheVersion_Undelete_RestoresIt_Destroy_IsForever()
    {
        var path = NewPath();
        await Put(path, "v1");
        await Put(path, "v2");

        var deleted = await Vault.Kv.DeleteAsync(new DeleteSecretRequest { Path = path }, Vault.As());
        Assert.Equal([2UL], deleted.Versions);
        var gone = await Rpc.FailsWith(StatusCode.NotFound, () => Vault.Kv.GetAsync(new GetSecretRequest { Path = path }, Vault.As()));
        Assert.Contains("deleted", gone.Status.Detail, StringComparison.Ordinal);
        Assert.Equal("v1", await Read(path, 1));

        await Vault.Kv.UndeleteAsync(new UndeleteSecretRequest { Path = path, Versions = { 2 } }, Vault.As());
        Assert.Equal("v2", await Read(path));

        await Vault.Kv.DestroyAsync(new DestroySecretRequest { Path = path, Versions = { 1 } }, Vault.As());
        var destroyed = await Rpc.FailsWith(StatusCode.NotFound, () => Vault.Kv.GetAsync(new GetSecretRequest { Path = path, Version = 1 }, Vault.As()));
        Assert.Contains("destroyed", destroyed.Status.Detail, StringComparison.Ordinal);
        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => Vault.Kv.UndeleteAsync(new UndeleteSecretRequest { Path = path, Versions = { 1 } }, Vault.As()));

        var meta = await Vault.Kv.GetMetadataAsync(new GetMetadataRequest { Path = path }, Vault.As());
        Assert.True(meta.Versions.Single(v => v.Version == 1).Destroyed);
        Assert.Null(meta.Versions.Single(v => v.Version == 2).DeletedAt);
    }

    [Fact]
    public async Task MaxVersions_PrunesTheOldest()
    {
        var path = NewPath();
        await Put(path, "v1");
        await Vault.Kv.UpdateMetadataAsync(new UpdateMetadataRequest { Path = path, MaxVersions = 3 }, Vault.As());
        for (var i = 2; i <= 5; i++)
        {
            await Put(path, $"v{i}");
        }
        var meta = await Vault.Kv.GetMetadataAsync(new GetMetadataRequest { Path = path }, Vault.As());
        Assert.Equal([3UL, 4UL, 5UL], meta.Versions.Select(v => v.Version));
        Assert.Equal(3UL, meta.OldestVersion);
        await Rpc.FailsWith(StatusCode.NotFound, () => Vault.Kv.GetAsync(new GetSecretRequest { Path = path, Version = 2 }, Vault.As()));
        Assert.Equal("v3", await Read(path, 3));

        await Vault.Kv.UpdateMetadataAsync(new UpdateMetadataRequest { Path = path, MaxVersions = 1 }, Vault.As());
        meta = await Vault.Kv.GetMetadataAsync(new GetMetadataRequest { Path = path }, Vault.As());
        Assert.Equal([5UL], meta.Versions.Select(v => v.Version));
    }

    [Fact]
    public async Task List_ShowsKeysAndFoldersDirectlyUnderThePrefix()
    {
        var root = $"list-{Guid.NewGuid():N}";
        await Put($"{root}/a", "x");
        await Put($"{root}/b", "x");
        await Put($"{root}/dir/c", "x");
        await Put($"{root}/dir/deeper/d", "x");
        await Put($"{root}x/not-mine", "x");

        var top = await Vault.Kv.ListAsync(new ListSecretsRequest { Prefix = root }, Vault.As());
        Assert.Equal(["a", "b", "dir/"], top.Keys);
        var nested = await Vault.Kv.ListAsync(new ListSecretsRequest { Prefix = root + "/dir/" }, Vault.As());
        Assert.Equal(["c", "deeper/"], nested.Keys);
        var all = await Vault.Kv.ListAsync(new ListSecretsRequest(), Vault.As());
        Assert.Contains(root + "/", all.Keys);
    }

    [Fact]
    public async Task DeleteMetadata_RemovesEveryVersion()
    {
        var path = NewPath();
        await Put(path, "a");
        await Put(path, "b");
        await Vault.Kv.DeleteMetadataAsync(new DeleteMetadataRequest { Path = path }, Vault.As());
        await Rpc.FailsWith(StatusCode.NotFound, () => Vault.Kv.GetAsync(new GetSecretRequest { Path = path, Version = 1 }, Vault.As()));
        await Rpc.FailsWith(StatusCode.NotFound, () => Vault.Kv.GetMetadataAsync(new GetMetadataRequest { Path = path }, Vault.As()));
        Assert.Equal(1UL, await Put(path, "fresh"));
    }
}
