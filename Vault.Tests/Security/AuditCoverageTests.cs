using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Security;

/// <summary>
/// Every audited RPC (all but init, unseal and status, which run before the seal check) leaves
/// exactly one audit entry naming its method, caller, resource path and outcome — checked for
/// every row of the authorisation matrix, so a new RPC is covered as soon as it has a row.
/// </summary>
public sealed class AuditCoverageTests(SharedVault fixture) : IClassFixture<SharedVault>
{
    private TestVault Vault => fixture.Vault;

    private AuditService.AuditServiceClient Audit => new(Vault.Channel);

    public static IEnumerable<object[]> AuditedRpcs() =>
        RpcMatrix.Cases
            .Where(c => c.Method is not ("vault.v1.SystemService/Init" or "vault.v1.SystemService/Unseal" or "vault.v1.SystemService/Status" or "vault.v1.SystemService/Seal"))
            .Select(c => new object[] { c.Name });

    [Theory]
    [MemberData(nameof(AuditedRpcs))]
    public async Task ACall_LeavesExactlyOneEntry_WithItsMethodCallerPathAndOutcome(string rpc)
    {
        var row = RpcMatrix.Case(rpc);
        var prepared = await row.PrepareAsync(Vault);
        var root = await Vault.Tokens.LookupAsync(new LookupTokenRequest(), Vault.As());
        var rootHmac = (await Audit.HashAsync(new HashAuditRequest { Value = Vault.RootToken }, Vault.As())).Hash;
        var marker = (await Audit.TailAsync(new TailAuditRequest { Limit = 1 }, Vault.As())).Entries.Single().Seq;

        var options = prepared.AsToken is { } own ? Vault.As(own) : prepared.Access is null ? new CallOptions() : Vault.As();
        var status = await DescriptorInvoker.StatusOfAsync(() => DescriptorInvoker.CallAsync(Vault.Channel.CreateCallInvoker(), DescriptorInvoker.Find(row.Method), prepared.Request, options));

        // marker + 1 is the tail that read the marker; the call is the one entry of a request after
        // it (the tail below is recorded only once it has answered). The vault's own work may
        // write between: a target a row rotated (on a closed port) retries in the background.
        var entry = Assert.Single((await Audit.TailAsync(new TailAuditRequest { AfterSeq = marker + 1 }, Vault.As())).Entries, e => !e.Accessor.StartsWith("system:", StringComparison.Ordinal));
        Assert.Equal(row.Method, entry.Rpc);
        Assert.Equal(status.StatusCode == StatusCode.OK ? "ok" : "error", entry.Outcome);
        Assert.Equal(status.StatusCode == StatusCode.OK ? "" : status.StatusCode.ToString(), entry.ErrorCode);
        if (prepared.Access is { } access)
        {
            Assert.Equal(root.Accessor, entry.Accessor);
            Assert.Equal(access.Path, entry.Path);
            Assert.Equal(rootHmac, entry.CredentialHmac);
        }
    }
}
