using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Security;

/// <summary>The fuzzer's findings, each pinned as one small request so it reads (and replays) on its own.</summary>
public sealed class FuzzFindingsTests(SharedVault fixture) : IClassFixture<SharedVault>
{
    private TestVault Vault => fixture.Vault;

    [Fact]
    public async Task TailAudit_WithOutOfRangeSince_IsInvalidArgumentNamingTheField()
    {
        var audit = new AuditService.AuditServiceClient(Vault.Channel);
        var ex = await Rpc.FailsWith(StatusCode.InvalidArgument, () => audit.TailAsync(new TailAuditRequest { Since = new Timestamp { Seconds = 0, Nanos = -1 } }, Vault.As()));
        Assert.StartsWith("since:", ex.Status.Detail, StringComparison.Ordinal);
        await Rpc.FailsWith(StatusCode.InvalidArgument, () => audit.TailAsync(new TailAuditRequest { Since = new Timestamp { Seconds = long.MaxValue } }, Vault.As()));
    }

    [Fact]
    public async Task RequestBodyThatIsNotTheMessage_IsInvalidArgument_NotUnknown()
    {
        var method = DescriptorInvoker.Find("vault.v1.KvService/Get");
        // Field 1 (path) declared 100 bytes long, with 2 bytes present: a truncated message.
        byte[] truncated = [0x0A, 0x64, 0x61, 0x62];
        await Rpc.FailsWith(StatusCode.InvalidArgument, () => DescriptorInvoker.CallRawAsync(Vault.Channel.CreateCallInvoker(), method, truncated, Vault.As()));
    }

    [Fact]
    public async Task TokenLookup_WithAHugeAccessor_AnswersABoundedDetail_AndLeavesTheConnectionUsable()
    {
        // A NOT_FOUND that echoes a 100 KB accessor sends a grpc-message trailer over the client's
        // 64 KB header limit: the client sees UNAVAILABLE and every call in flight on the
        // connection fails with it.
        var huge = "va_" + new string('a', 100_000);
        var status = await DescriptorInvoker.StatusOfAsync(async () => await Vault.Tokens.LookupAsync(new LookupTokenRequest { Accessor = huge }, Vault.As()));
        Assert.True(status.StatusCode is StatusCode.InvalidArgument or StatusCode.NotFound, $"got {status.StatusCode}: {status.Detail[..Math.Min(200, status.Detail.Length)]}");
        Assert.True(status.Detail.Length < 1024, $"the detail is {status.Detail.Length} characters long");
        await Vault.Tokens.LookupAsync(new LookupTokenRequest(), Vault.As());
    }
}
