using System.Globalization;
using System.Runtime;
using System.Text;
using Vault.Benchmarks.Hosting;
using Vault.Benchmarks.Load;

namespace Vault.Benchmarks;

/// <summary>The markdown report printed to stdout at the end of a run.</summary>
internal static class Report
{
    public static string Render(BenchmarkOptions options, IReadOnlyList<string> args, IReadOnlyList<RunResult> results)
    {
        var text = new StringBuilder();
        var kdf = BenchmarkVault.CheapKdf;
        text.AppendLine(CultureInfo.InvariantCulture, $"## Vault.Benchmarks, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"- arguments: `{(args.Count == 0 ? "(defaults)" : string.Join(' ', args))}`");
        text.AppendLine(CultureInfo.InvariantCulture, $"- runtime: .NET {Environment.Version}, {(GCSettings.IsServerGC ? "server" : "workstation")} GC, {Environment.ProcessorCount} processors; servers and load generator share this one process");
        text.AppendLine(CultureInfo.InvariantCulture, $"- load: closed loop, {options.Warmup.TotalSeconds:0.###} s warmup then {options.Duration.TotalSeconds:0.###} s measured per row; all clients of a row share one GrpcChannel (SocketsHttpHandler, EnableMultipleHttp2Connections)");
        text.AppendLine(CultureInfo.InvariantCulture, $"- data: {options.Payload}-byte values; kv-get reads random paths among {options.Secrets} pre-written secrets; kv-put writes a new version of a random path among {options.Secrets} (acknowledged after fsync, group commit), each kv-put row on a fresh vault");
        text.AppendLine(CultureInfo.InvariantCulture, $"- vault: initialised with Argon2id m={kdf.MemoryKib} KiB, t={kdf.Iterations}, p={kdf.Parallelism} (init/unseal only; no measured request derives a key); root token");
        text.AppendLine();
        text.AppendLine("| scenario | clients | ops/s | p50 ms | p99 ms | p99.9 ms | errors | CPU µs/call | ops/s vs echo | p99 vs echo |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var result in results.OrderBy(r => r.Clients).ThenBy(r => Array.IndexOf(BenchmarkOptions.AllScenarios, r.Scenario)))
        {
            var echo = result.Scenario == ScenarioNames.Echo ? null : results.FirstOrDefault(r => r.Scenario == ScenarioNames.Echo && r.Clients == result.Clients);
            var latency = result.Latency;
            var p99 = latency.PercentileNanos(99);
            var echoP99 = echo?.Latency.PercentileNanos(99) ?? 0;
            var ok = latency.Count > 0;
            var throughputRatio = echo is null || echo.OpsPerSecond == 0 ? "–" : Ratio(result.OpsPerSecond / echo.OpsPerSecond);
            var latencyRatio = echoP99 == 0 || !ok ? "–" : Ratio((double)p99 / echoP99);
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {result.Scenario} | {result.Clients} | {result.OpsPerSecond:N0} | {Ms(latency.PercentileNanos(50), ok)} | {Ms(p99, ok)} | {Ms(latency.PercentileNanos(99.9), ok)} | {result.Errors} | {result.CpuMicrosPerCall:0} | {throughputRatio} | {latencyRatio} |");
        }
        foreach (var failed in results.Where(r => r.FirstError is not null))
        {
            text.AppendLine();
            text.AppendLine(CultureInfo.InvariantCulture, $"{failed.Scenario} x{failed.Clients}: {failed.Errors} failed calls, first: {failed.FirstError}");
        }
        return text.ToString();
    }

    // Latencies are of successful calls only; a row with none has no latency to show.
    private static string Ms(long nanos, bool any) => any ? (nanos / 1e6).ToString("0.000", CultureInfo.InvariantCulture) : "–";

    private static string Ratio(double value) => value.ToString("0.00", CultureInfo.InvariantCulture) + "×";
}
