using System.Globalization;
using System.Text;
using Vault.Benchmarks.Load;

namespace Vault.Benchmarks;

/// <summary>
/// The kv-put-large section of the report, with its two goals (issue 11): the server's peak
/// memory while the large puts run, and the small reader's p99 beside them against its own
/// idle p99 on the same vault.
/// </summary>
internal static class LargePutReport
{
    private const double MaxPeakMib = 600;
    private const double MaxReadP99Ratio = 10;

    public static string Render(IReadOnlyList<LargePutResult> results)
    {
        var text = new StringBuilder();
        if (results.Count == 0)
        {
            return "";
        }
        text.AppendLine(CultureInfo.InvariantCulture, $"### kv-put-large: puts of {LargePutScenario.ValueBytes:N0}-byte values beside one small reader");
        text.AppendLine();
        text.AppendLine("| transport | put clients | puts ok/s | put p50 ms | put p99 ms | refused/s | put errors | reader p99 idle ms | reader p99 loaded ms | loaded ÷ idle | reader errors | server peak MB idle | server peak MB loaded | server RSS MB loaded | server CPU % loaded |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            var seconds = r.Measured.TotalSeconds;
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Transport} | {r.Clients} | {r.Puts.Count / seconds:N1} | {Ms(r.Puts, 50)} | {Ms(r.Puts, 99)} | {r.Refused / seconds:N1} | {r.PutErrors} | {Ms(r.IdleRead, 99)} | {Ms(r.LoadedRead, 99)} | {Ratio(r)} | {r.ReadErrors} | {r.IdleServer.Memory.PeakMb:N0} | {r.LoadedServer.Memory.PeakMb:N0} | {r.LoadedServer.Memory.RssMb:N0} | {r.LoadedServer.Cpu.TotalSeconds / seconds * 100:N0} |");
        }
        foreach (var r in results.Where(r => r.FirstPutError is not null || r.FirstReadError is not null))
        {
            text.AppendLine();
            text.AppendLine(CultureInfo.InvariantCulture, $"kv-put-large {r.Transport} x{r.Clients}: first failed put: {r.FirstPutError ?? "none"}; first failed read: {r.FirstReadError ?? "none"}");
        }
        text.AppendLine();
        text.AppendLine("| goal (issue 11) | transport | clients | measured | bound | result |");
        text.AppendLine("|---|---|---:|---|---|---|");
        foreach (var r in results)
        {
            var peak = r.LoadedServer.Memory.PeakMb;
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| server peak memory during the puts{(r.LoadedServer.PeakIsWindow ? "" : " (VmHWM since start: reset refused)")} | {r.Transport} | {r.Clients} | {peak:N0} MiB | ≤ {MaxPeakMib:N0} MiB | {(peak <= MaxPeakMib ? "met" : "missed")} |");
            var idle = r.IdleRead.PercentileNanos(99);
            var loaded = r.LoadedRead.PercentileNanos(99);
            var ratio = idle == 0 || r.LoadedRead.Count == 0 ? (double?)null : (double)loaded / idle;
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| small read p99 under the puts vs idle | {r.Transport} | {r.Clients} | {Ratio(r)} ({loaded / 1e6:0.000} ms vs {idle / 1e6:0.000} ms){(r.ReadErrors > 0 ? $", {r.ReadErrors} failed reads" : "")} | ≤ {MaxReadP99Ratio:0}× and no failed read | {(ratio is { } x && x <= MaxReadP99Ratio && r.ReadErrors == 0 ? "met" : "missed")} |");
        }
        return text.ToString();
    }

    private static string Ms(LatencyHistogram latency, double percentile) =>
        latency.Count == 0 ? "–" : (latency.PercentileNanos(percentile) / 1e6).ToString("0.000", CultureInfo.InvariantCulture);

    private static string Ratio(LargePutResult r)
    {
        var idle = r.IdleRead.PercentileNanos(99);
        return idle == 0 || r.LoadedRead.Count == 0 ? "–" : Report.Ratio((double)r.LoadedRead.PercentileNanos(99) / idle);
    }
}
