using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Security;

/// <summary>
/// A refusal that quotes what the caller sent stays small: the status detail is an HTTP/2 header,
/// and a client that receives one over its header limit drops the whole connection, failing every
/// other call on it (the fuzzer found it through Archive's before_file).
/// </summary>
public sealed class StatusDetailTests
{
    [Fact]
    public async Task ARefusalQuotingAHugeInput_HasABoundedDetail_AndTheConnectionGoesOn()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var huge = new string('x', 100_000);

        var refused = await Rpc.FailsWith(StatusCode.InvalidArgument, () => vault.Policies.PutAsync(new PutPolicyRequest
        {
            Policy = new Policy { Name = "huge", Rules = { new PolicyRule { Path = "kv/*", Capabilities = { huge } } } },
        }, vault.As()));
        Assert.StartsWith("policy.rules[0].capabilities: unknown capability", refused.Status.Detail, StringComparison.Ordinal);
        Assert.True(refused.Status.Detail.Length <= 1100, $"a detail of {refused.Status.Detail.Length} characters");

        var archive = await Rpc.FailsWith(StatusCode.InvalidArgument, () => new AuditService.AuditServiceClient(vault.Channel)
            .ArchiveAsync(new ArchiveAuditRequest { BeforeFile = huge }, vault.As()));
        Assert.True(archive.Status.Detail.Length <= 1100, $"a detail of {archive.Status.Detail.Length} characters");

        // The same channel (connection) still serves.
        Assert.False((await vault.System.StatusAsync(new StatusRequest())).Sealed);
    }
}
