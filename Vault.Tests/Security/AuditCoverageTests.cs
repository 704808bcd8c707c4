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

        // After the marker come the tail that read it, then the call (the tail below is recorded
        // only once it has answered). The vault's own work may write anywhere between — a target a
        // row rotated (on a closed port) retries in the background — so its entries are left out
        // first, and only then is the first request's (the marker's tail) skipped: counting
        // marker + 1 as that tail once found a background entry there and the tail counted twice.
        var requests = (await Audit.TailAsync(new TailAuditRequest { AfterSeq = marker }, Vault.As())).Entries
            .Where(e => !e.Accessor.StartsWith("system:", StringComparison.Ordinal)).ToList();
        Assert.Equal("vault.v1.AuditService/Tail", requests[0].Rpc);
        var entry = Assert.Single(requests.Skip(1));
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
