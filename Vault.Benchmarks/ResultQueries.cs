using Vault.Benchmarks.Load;

namespace Vault.Benchmarks;

/// <summary>The rows a row is compared with, found among the rows of the same run.</summary>
internal static class ResultQueries
{
    public static RunResult? Find(this IReadOnlyList<RunResult> results, string scenario, string? transport, int? payload, int clients) =>
        results.FirstOrDefault(r => r.Point.Scenario == scenario && r.Point.Transport == transport && r.Point.Payload == payload && r.Point.Clients == clients);

    /// <summary>
    /// Echo at the same transport, clients and payload; for rows without a payload, echo at the
    /// reference payload (1024 bytes, or the smallest measured). None for rotate-floor, which
    /// uses no transport.
    /// </summary>
    public static RunResult? EchoFor(this IReadOnlyList<RunResult> results, RunResult row, int referencePayload) =>
        row.Point.Scenario == ScenarioNames.Echo || row.Point.Transport is null
            ? null
            : results.Find(ScenarioNames.Echo, row.Point.Transport, row.Point.Payload ?? referencePayload, row.Point.Clients);

    /// <summary>rotate-floor at the same clients, for a rotate row.</summary>
    public static RunResult? FloorFor(this IReadOnlyList<RunResult> results, RunResult row) =>
        row.Point.Scenario == ScenarioNames.Rotate ? results.Find(ScenarioNames.RotateFloor, null, null, row.Point.Clients) : null;
}
