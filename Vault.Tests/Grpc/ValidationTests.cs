using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Grpc;

public sealed class ValidationTests
{
    public static TheoryData<string, string> BadPaths => new()
    {
        { "", "path: must not be empty" },
        { "apps/../admin", "path: must not contain '.' or '..' segments" },
        { "apps/./x", "path: must not contain '.' or '..' segments" },
        { "apps/\u0007bell", "path: contains a control character" },
        { "apps/new\nline", "path: contains a control character" },
        { "/leading", "path: must not start or end with '/'" },
        { "a//b", "path: has an empty segment ('//')" },
        { new string('p', 513), "path: is longer than 512 bytes" },
    };

    [Theory]
    [MemberData(nameof(BadPaths))]
    public async Task Put_WithBadPath_IsInvalidArgumentNamingThePath_AndStoresNothing(string path, string expected)
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var ex = await Rpc.FailsWith(StatusCode.InvalidArgument, () => vault.Kv.PutAsync(new PutSecretRequest { Path = path, Data = { ["k"] = "v" } }, vault.As()));
        Assert.Equal(expected, ex.Status.Detail);
        Assert.Empty((await vault.Kv.ListAsync(new ListSecretsRequest(), vault.As())).Keys);
    }

    [Fact]
    public async Task Put_OverTheSizeLimit_IsInvalidArgumentNamingData_AndStoresNothing()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var request = new PutSecretRequest { Path = "big/one" };
        request.Data["blob"] = new string('x', 1024 * 1024 + 1);
        var ex = await Rpc.FailsWith(StatusCode.InvalidArgument, () => vault.Kv.PutAsync(request, vault.As()));
        Assert.StartsWith("data: is larger than the limit", ex.Status.Detail, StringComparison.Ordinal);
        await Rpc.FailsWith(StatusCode.NotFound, () => vault.Kv.GetMetadataAsync(new GetMetadataRequest { Path = "big/one" }, vault.As()));
    }

    [Fact]
    public async Task PolicyWithUnknownCapability_IsInvalidArgumentNamingTheRule_AndStoresNothing()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var policy = new Policy { Name = "bad", Rules = { new PolicyRule { Path = "kv/*", Capabilities = { "read", "sudo" } } } };
        var ex = await Rpc.FailsWith(StatusCode.InvalidArgument, () => vault.Policies.PutAsync(new PutPolicyRequest { Policy = policy }, vault.As()));
        Assert.StartsWith("policy.rules[0].capabilities: unknown capability 'sudo'", ex.Status.Detail, StringComparison.Ordinal);
        await Rpc.FailsWith(StatusCode.NotFound, () => vault.Policies.GetAsync(new GetPolicyRequest { Name = "bad" }, vault.As()));
    }

    [Fact]
    public async Task PolicyWithStarInTheMiddle_IsInvalidArgument()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var policy = new Policy { Name = "mid", Rules = { new PolicyRule { Path = "kv/*/x", Capabilities = { "read" } } } };
        var ex = await Rpc.FailsWith(StatusCode.InvalidArgument, () => vault.Policies.PutAsync(new PutPolicyRequest { Policy = policy }, vault.As()));
        Assert.StartsWith("policy.rules[0].path:", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Init_WithEmptyPassphrase_IsInvalidArgument_AndLeavesTheVaultUninitialised()
    {
        await using var vault = await TestVault.StartAsync();
        var ex = await Rpc.FailsWith(StatusCode.InvalidArgument, () => vault.System.InitAsync(new InitRequest { Passphrase = "" }));
        Assert.Equal("passphrase: must not be empty", ex.Status.Detail);
        Assert.False((await vault.System.StatusAsync(new StatusRequest())).Initialized);
    }
}
