using Grpc.Core;
using Grpc.Health.V1;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Audit;

/// <summary>
/// The audit chain's head is anchored in the store, so a log shortened while the vault was
/// stopped — lines cut off its tail, the newest file or every file deleted, a last line cut in
/// half — is found at start-up: the vault refuses to serve (and health says so) until an
/// operator acknowledges the gap, and verify names what is missing.
/// </summary>
public sealed class AuditAnchorTests
{
    public static TheoryData<string> Shortenings => new() { "cut-lines", "cut-mid-line", "delete-newest-file", "delete-every-file" };

    private static AuditService.AuditServiceClient Audit(TestVault vault) => new(vault.Channel);

    private static string AuditDir(TestVault vault) => Path.Combine(vault.DataDir, "audit");

    private static List<string> AuditFiles(TestVault vault) => [.. Directory.GetFiles(AuditDir(vault), "audit-*.jsonl").Order(StringComparer.Ordinal)];

    [Theory]
    [MemberData(nameof(Shortenings))]
    public async Task ALogShortenedWhileStopped_IsRefusedAtStartUp_UntilTheGapIsAcknowledged(string shortening)
    {
        // Small files, so that "the newest file" is not the whole log.
        await using var vault = await TestVault.StartInitializedAsync("--Vault:AuditMaxFileBytes=65536");
        await vault.UnsealAsync();
        for (var i = 0; i < 250; i++)
        {
            await vault.Kv.PutAsync(new PutSecretRequest { Path = $"anchor/{i}/{new string('p', 100)}", Data = { ["v"] = "x" } }, vault.As());
        }
        Assert.True(AuditFiles(vault).Count >= 2);
        var lastSeq = (await Audit(vault).TailAsync(new TailAuditRequest { Limit = 1 }, vault.As())).Entries.Single().Seq + 1;

        await vault.RestartAsync(() => Shorten(vault, shortening));
        await vault.UnsealAsync();

        var status = await vault.System.StatusAsync(new StatusRequest());
        Assert.Contains($"missing entries", status.AuditFailure, StringComparison.Ordinal);
        Assert.Contains($"–{lastSeq}", status.AuditFailure, StringComparison.Ordinal);
        var health = new Health.HealthClient(vault.Channel);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, (await health.CheckAsync(new HealthCheckRequest())).Status);
        var refused = await Rpc.FailsWith(StatusCode.Unavailable, () => vault.Kv.GetAsync(new GetSecretRequest { Path = "anchor/0/" + new string('p', 100) }, vault.As()));
        Assert.Contains($"acknowledge-gap --last-missing {lastSeq}", refused.Status.Detail, StringComparison.Ordinal);
        await Rpc.FailsWith(StatusCode.Unavailable, () => Audit(vault).VerifyAsync(new VerifyAuditRequest(), vault.As()));

        // The acknowledgement names the gap it means; a wrong one changes nothing.
        await Rpc.FailsWith(StatusCode.InvalidArgument, () => Audit(vault).AcknowledgeGapAsync(new AcknowledgeAuditGapRequest { LastMissing = lastSeq + 1 }, vault.As()));
        await Rpc.FailsWith(StatusCode.Unavailable, () => vault.Kv.GetAsync(new GetSecretRequest { Path = "anchor/0/" + new string('p', 100) }, vault.As()));
        var acknowledged = await Audit(vault).AcknowledgeGapAsync(new AcknowledgeAuditGapRequest { LastMissing = lastSeq }, vault.As());
        Assert.Equal(lastSeq, acknowledged.LastMissing);

        Assert.Equal("x", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "anchor/0/" + new string('p', 100) }, vault.As())).Data["v"]);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);
        var verdict = await Audit(vault).VerifyAsync(new VerifyAuditRequest(), vault.As());
        Assert.True(verdict.Ok, verdict.Reason);
        var after = (await Audit(vault).TailAsync(new TailAuditRequest { Limit = 3 }, vault.As())).Entries;
        Assert.Contains(after, e => e.Rpc.EndsWith("AcknowledgeGap", StringComparison.Ordinal) && e.Seq == lastSeq + 1 && e.Outcome == "ok");

        // And it stays acknowledged across a restart.
        await vault.RestartAsync();
        await vault.UnsealAsync();
        Assert.Empty((await vault.System.StatusAsync(new StatusRequest())).AuditFailure);
        Assert.True((await Audit(vault).VerifyAsync(new VerifyAuditRequest(), vault.As())).Ok);
    }

    [Fact]
    public async Task ACutTailWhileRunning_FailsVerify_NamingWhatIsMissing()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.UnsealAsync();
        for (var i = 0; i < 10; i++)
        {
            await vault.Kv.PutAsync(new PutSecretRequest { Path = $"cut/{i}", Data = { ["v"] = "x" } }, vault.As());
        }
        var file = AuditFiles(vault)[^1];
        var lines = File.ReadAllLines(file).ToList();
        lines.RemoveRange(lines.Count - 3, 3);
        File.WriteAllLines(file, lines);

        var verdict = await Audit(vault).VerifyAsync(new VerifyAuditRequest(), vault.As());
        Assert.False(verdict.Ok);
        Assert.Contains("missing", verdict.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheAcknowledgement_NeedsItsOwnCapability_AndIsRefusedWhenNothingIsMissing()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.UnsealAsync();
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "auditor", Rules = { new PolicyRule { Path = "sys/audit", Capabilities = { "read" } } } } }, vault.As());
        var auditor = (await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "auditor" } }, vault.As())).Token;

        await Rpc.FailsWith(StatusCode.PermissionDenied, () => Audit(vault).AcknowledgeGapAsync(new AcknowledgeAuditGapRequest { LastMissing = 1 }, vault.As(auditor)));
        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => Audit(vault).AcknowledgeGapAsync(new AcknowledgeAuditGapRequest { LastMissing = 1 }, vault.As()));
    }

    private static void Shorten(TestVault vault, string shortening)
    {
        var files = AuditFiles(vault);
        switch (shortening)
        {
            case "cut-lines":
                var lines = File.ReadAllLines(files[^1]).ToList();
                lines.RemoveRange(lines.Count - 2, 2);
                File.WriteAllLines(files[^1], lines);
                break;
            case "cut-mid-line":
                // Looks like a crash in the middle of a write, which start-up cuts off; but the
                // entry was acknowledged and anchored.
                var bytes = File.ReadAllBytes(files[^1]);
                File.WriteAllBytes(files[^1], bytes[..^20]);
                break;
            case "delete-newest-file":
                File.Delete(files[^1]);
                break;
            case "delete-every-file":
                files.ForEach(File.Delete);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(shortening), shortening, "unknown shortening");
        }
    }
}
