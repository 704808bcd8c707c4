using Grpc.Core;
using Grpc.Health.V1;
using Vault.Protocol.V1;

namespace Vault.Tests.Security;

/// <summary>
/// Judges one seeded run of 10,000 malformed requests to every RPC but Seal (see
/// <see cref="FuzzRun"/>): each gets a deliberate answer, never INTERNAL or UNKNOWN; every
/// INVALID_ARGUMENT names its field; the server is still healthy afterwards.
/// </summary>
public sealed class FuzzTests(FuzzRun run) : IClassFixture<FuzzRun>
{
    [Fact]
    public void WellFormedMalformedRequests_NeverAnswerInternalOrUnknown()
    {
        var crashes = run.Outcomes.Where(o => o.Parses && o.Status.StatusCode is StatusCode.Internal or StatusCode.Unknown).ToList();
        Assert.True(crashes.Count == 0, Report(crashes, "parseable requests answered INTERNAL/UNKNOWN"));
    }

    [Fact]
    public void UnparseableBodies_AnswerInvalidArgument_NotInternalOrUnknown()
    {
        var unparseable = run.Outcomes.Where(o => !o.Parses).ToList();
        Assert.True(unparseable.Count > 500, $"only {unparseable.Count} unparseable bodies were sent {run.Replay}");
        var wrong = unparseable.Where(o => o.Status.StatusCode is StatusCode.Internal or StatusCode.Unknown).ToList();
        Assert.True(wrong.Count == 0, Report(wrong, "unparseable bodies answered INTERNAL/UNKNOWN instead of INVALID_ARGUMENT"));
    }

    [Fact]
    public void EveryRequest_GetsAnAnswerTheApiDefines()
    {
        // UNAVAILABLE means the audit log failed (fail-closed) or the transport broke; neither
        // should be caused by what a request contains.
        var unexpected = run.Outcomes.Where(o => o.Status.StatusCode is StatusCode.Unavailable or StatusCode.DataLoss or StatusCode.DeadlineExceeded or StatusCode.Cancelled).ToList();
        Assert.True(unexpected.Count == 0, Report(unexpected, "requests answered UNAVAILABLE/DATA_LOSS/DEADLINE_EXCEEDED/CANCELLED"));
    }

    [Fact]
    public void InvalidArgumentAnswers_NameTheField()
    {
        var invalid = run.Outcomes.Where(o => o.Status.StatusCode == StatusCode.InvalidArgument).ToList();
        Assert.True(invalid.Count > FuzzRun.Requests / 10, $"only {invalid.Count} INVALID_ARGUMENT answers: the fuzzer is not reaching validation {run.Replay} [{run.Summary}]");
        var unnamed = invalid.Where(o => !o.Status.Detail.Contains(':', StringComparison.Ordinal)).ToList();
        Assert.True(unnamed.Count == 0, Report(unnamed, "INVALID_ARGUMENT answers name no field ('field: problem')"));
    }

    [Fact]
    public void Run_SendsAllRequests_AndSomeGetThrough()
    {
        Assert.Equal(FuzzRun.Requests, run.Outcomes.Count);
        var ok = run.Outcomes.Count(o => o.Status.StatusCode == StatusCode.OK);
        Assert.True(ok > FuzzRun.Requests / 20, $"only {ok} OK answers: the fuzzer is not exercising the handlers {run.Replay} [{run.Summary}]");
        var methods = run.Outcomes.Select(o => o.Request.Method.FullName).Distinct().Count();
        Assert.True(methods == DescriptorInvoker.AllMethods.Count - 1, $"only {methods} RPCs were fuzzed {run.Replay}");
    }

    [Fact]
    public async Task AfterTheRun_TheServerIsHealthy_AndServesAPutAndGet()
    {
        var vault = run.Vault;
        var health = await new Health.HealthClient(vault.Channel).CheckAsync(new HealthCheckRequest());
        Assert.True(health.Status == HealthCheckResponse.Types.ServingStatus.Serving, $"health is {health.Status} after fuzzing {run.Replay}");
        var status = await vault.System.StatusAsync(new StatusRequest());
        Assert.True(!status.Sealed && status.AuditFailure.Length == 0, $"after fuzzing {run.Replay}: {status}");

        var path = $"sec-after-fuzz-{Guid.NewGuid():N}/s";
        await vault.Kv.PutAsync(new PutSecretRequest { Path = path, Data = { ["k"] = "still works" } }, vault.As());
        var read = await vault.Kv.GetAsync(new GetSecretRequest { Path = path }, vault.As());
        Assert.Equal("still works", read.Data["k"]);

        var audit = await new AuditService.AuditServiceClient(vault.Channel).VerifyAsync(new VerifyAuditRequest(), vault.As());
        Assert.True(audit.Ok, $"audit chain broken after fuzzing {run.Replay}: {audit.File}:{audit.Line} {audit.Reason}");
    }

    /// <summary>The count, then one example per (RPC, status) and the first few in full.</summary>
    private string Report(IReadOnlyList<FuzzOutcome> bad, string what)
    {
        var groups = bad.GroupBy(o => (DescriptorInvoker.NameOf(o.Request.Method), o.Status.StatusCode))
            .Select(g => $"  {g.Key.Item1} {g.Key.StatusCode} ×{g.Count()}, e.g. {Clip(g.First().ToString())}");
        return $"{bad.Count} {what} {run.Replay} [{run.Summary}]\n{string.Join("\n", groups)}";
    }

    private static string Clip(string text) => text.Length <= 400 ? text : text[..400] + "…";
}
