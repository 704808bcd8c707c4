using System.Globalization;
using System.Text;
using Vault.Benchmarks.Load;
using static Vault.Benchmarks.ScenarioNames;

namespace Vault.Benchmarks;

/// <summary>
/// The goals of issue 6 (docs/BENCHMARKS.md), checked against the rows of this run only: each
/// line says what was measured, the bound, and met or missed; a goal whose rows this run did not
/// measure says so. Nothing here fails the run.
/// </summary>
internal static class Goals
{
    private const int GoalClients = 32;
    private const int GoalPayload = 1024;
    private const double MaxScaleRssMb = 400;
    private const string NotInRun = "rows not in this run";

    private static readonly Metric Throughput = new(r => r.OpsPerSecond, v => v.ToString("N0", CultureInfo.InvariantCulture) + " ops/s");
    private static readonly Metric P99 = new(r => r.Latency.PercentileNanos(99), Milliseconds);
    private static readonly Metric Mean = new(r => r.Latency.MeanNanos, Milliseconds);

    public static string Render(BenchmarkOptions options, IReadOnlyList<RunResult> results)
    {
        var lines = new List<Line>();
        foreach (var transport in options.Transports)
        {
            var echo = results.Find(ScenarioNames.Echo, transport, GoalPayload, GoalClients);
            var kvGet = results.Find(KvGet, transport, GoalPayload, GoalClients);
            lines.Add(AtLeast($"kv-get x{GoalClients}, 1 KB: throughput vs echo", transport, kvGet, echo, Throughput, 0.6));
            lines.Add(AtMost($"kv-get x{GoalClients}, 1 KB: p99 vs echo's p99", transport, kvGet, echo, P99, 3.0));
            lines.Add(AtLeast($"kv-get-metrics x{GoalClients} (metrics exported, scraped every second) vs kv-get x{GoalClients}, 1 KB: throughput", transport,
                results.Find(KvGetMetrics, transport, GoalPayload, GoalClients), kvGet, Throughput, 0.95));

            var kvPut = results.Find(KvPut, transport, GoalPayload, GoalClients);
            lines.Add(AtLeast($"kv-put x{GoalClients}, 1 KB: throughput vs echo", transport, kvPut, echo, Throughput, 0.3));
            lines.Add(AtLeast($"kv-put x{GoalClients} vs kv-put x1 (1 KB)", transport, kvPut, results.Find(KvPut, transport, GoalPayload, 1), Throughput, 8.0));

            // Issue 15: records in PostgreSQL, beside the LiteDB rows of the same run.
            lines.Add(AtLeast($"kv-put-pg x{GoalClients} (records in PostgreSQL) vs kv-put x{GoalClients}, 1 KB: throughput", transport,
                results.Find(KvPutPostgres, transport, GoalPayload, GoalClients), kvPut, Throughput, 0.5));
            lines.Add(AtLeast($"kv-put-active x{GoalClients} (the active of two nodes on PostgreSQL) vs kv-put x{GoalClients}, 1 KB: throughput", transport,
                results.Find(KvPutActive, transport, GoalPayload, GoalClients), kvPut, Throughput, 0.5));
            lines.Add(AtLeast($"kv-get-standby x{GoalClients} vs kv-get-active x{GoalClients} (two nodes on PostgreSQL), 1 KB: throughput", transport,
                results.Find(KvGetStandby, transport, GoalPayload, GoalClients), results.Find(KvGetActive, transport, GoalPayload, GoalClients), Throughput, 0.8));

            lines.Add(AtLeast($"lease-checkout x{GoalClients}: throughput vs echo", transport, results.Find(LeaseCheckout, transport, null, GoalClients), echo, Throughput, 0.25));

            var rotates = results.Where(r => r.Point.Scenario == Rotate && r.Point.Transport == transport).ToList();
            if (rotates.Count == 0)
            {
                lines.Add(AtMost("rotate vs rotate-floor: mean latency", transport, null, null, Mean, 1.5));
            }
            foreach (var rotate in rotates)
            {
                lines.Add(AtMost($"rotate x{rotate.Point.Clients} vs rotate-floor x{rotate.Point.Clients}: mean latency", transport, rotate, results.FloorFor(rotate), Mean, 1.5));
            }

            var scale = results.Find(KvGetScale, transport, GoalPayload, GoalClients);
            lines.Add(AtLeast($"kv-get x{GoalClients} over {options.ScaleSecrets:N0} secrets vs over {options.Secrets:N0}: throughput", transport, scale, kvGet, Throughput, 0.8));
            lines.Add(scale?.Server is { } usage
                ? new Line($"kv-get x{GoalClients} over {options.ScaleSecrets:N0} secrets: server working set", transport,
                    $"VmRSS {usage.Memory.RssMb:0} MB (VmHWM {usage.Memory.PeakMb:0} MB)", $"< {MaxScaleRssMb:0} MB", usage.Memory.RssMb < MaxScaleRssMb ? "met" : "missed")
                : NotMeasured($"kv-get x{GoalClients} over {options.ScaleSecrets:N0} secrets: server working set", transport, $"< {MaxScaleRssMb:0} MB"));
        }
        lines.Add(new Line("unseal with default Argon2id (64 MiB, t=3)", "–", "not measured by the sweep", "< 1 s", "see `unseal` (docs/BENCHMARKS.md)"));

        var text = new StringBuilder();
        text.AppendLine("### Goals (issue 6), from this run's rows");
        text.AppendLine();
        var measured = lines.Where(l => l.Result != NotInRun).ToList();
        if (measured.Count > 0)
        {
            text.AppendLine("| goal | transport | measured | bound | result |");
            text.AppendLine("|---|---|---|---|---|");
            foreach (var line in measured)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"| {line.Goal} | {line.Transport} | {line.Measured} | {line.Bound} | {line.Result} |");
            }
            text.AppendLine();
        }
        var missing = lines.Where(l => l.Result == NotInRun).Select(l => $"{l.Goal} ({l.Bound})").Distinct().ToList();
        if (missing.Count > 0)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"Not checked, since this run lacks their rows: {string.Join("; ", missing)}.");
        }
        return text.ToString();
    }

    private static Line AtLeast(string goal, string transport, RunResult? row, RunResult? baseline, Metric metric, double bound) =>
        Compare(goal, transport, row, baseline, metric, bound, atLeast: true);

    private static Line AtMost(string goal, string transport, RunResult? row, RunResult? baseline, Metric metric, double bound) =>
        Compare(goal, transport, row, baseline, metric, bound, atLeast: false);

    private static Line Compare(string goal, string transport, RunResult? row, RunResult? baseline, Metric metric, double bound, bool atLeast)
    {
        var boundText = (atLeast ? "≥ " : "≤ ") + Report.Ratio(bound);
        if (row is null || baseline is null || row.Latency.Count == 0 || baseline.Latency.Count == 0 || metric.Of(baseline) == 0)
        {
            return NotMeasured(goal, transport, boundText);
        }
        var ratio = metric.Of(row) / metric.Of(baseline);
        var met = atLeast ? ratio >= bound : ratio <= bound;
        var errors = row.Errors + baseline.Errors > 0 ? $" ({row.Errors + baseline.Errors} failed calls)" : "";
        return new Line(goal, transport, $"{Report.Ratio(ratio)} ({metric.Format(metric.Of(row))} vs {metric.Format(metric.Of(baseline))}){errors}", boundText, met ? "met" : "missed");
    }

    private static Line NotMeasured(string goal, string transport, string bound) => new(goal, transport, "–", bound, NotInRun);

    private static string Milliseconds(double nanos) => (nanos / 1e6).ToString("0.000", CultureInfo.InvariantCulture) + " ms";

    private sealed record Metric(Func<RunResult, double> Of, Func<double, string> Format);

    private sealed record Line(string Goal, string Transport, string Measured, string Bound, string Result);
}
