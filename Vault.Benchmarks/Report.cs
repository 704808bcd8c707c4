using System.Globalization;
using System.Runtime;
using System.Text;
using Vault.Benchmarks.Hosting;
using Vault.Benchmarks.Load;

namespace Vault.Benchmarks;

/// <summary>Facts about the run the report states beside its rows.</summary>
/// <param name="PostgresMaxConnections">Null when no scenario used PostgreSQL.</param>
internal sealed record RunInfo(DateTime StartedUtc, TimeSpan WallTime, bool UsedTls, int? PostgresMaxConnections, string? Interrupted);

/// <summary>The markdown report printed to stdout at the end of a run.</summary>
internal static class Report
{
    private const int FewCallsPerClient = 3;

    public static string Render(BenchmarkOptions options, IReadOnlyList<string> args, IReadOnlyList<RunResult> results, IReadOnlyList<LargePutResult> largePuts, RunInfo info)
    {
        var text = new StringBuilder();
        var kdf = BenchmarkVault.CheapKdf;
        Line(text, $"## Vault.Benchmarks, {info.StartedUtc:yyyy-MM-dd HH:mm} UTC");
        text.AppendLine();
        Line(text, $"- arguments: `{(args.Count == 0 ? "(defaults)" : string.Join(' ', args))}`; wall time {info.WallTime.TotalMinutes:0.0} min{(info.Interrupted is null ? "" : $"; **stopped early: {info.Interrupted}**")}");
        Line(text, $"- runtime: .NET {Environment.Version}, {(GCSettings.IsServerGC ? "server" : "workstation")} GC, {Environment.ProcessorCount} processors; the load generator is this process, every server its own process (this executable as `serve-vault` / `serve-echo`, same GC settings)");
        Line(text, $"- load: closed loop, {options.Warmup.TotalSeconds:0.###} s warmup then {options.Duration.TotalSeconds:0.###} s measured per row; all clients of a row share one GrpcChannel (SocketsHttpHandler, EnableMultipleHttp2Connections)");
        Line(text, $"- transports: plaintext HTTP/2 (h2c) on loopback{(info.UsedTls ? $"; tls: {TlsFiles.Description}, the client trusting exactly that certificate" : "")}");
        Line(text, $"- data: payloads {string.Join(", ", options.Payloads)} bytes (echo, kv-get, kv-put; other scenarios and kv-get-scale at {options.ReferencePayload}); kv-get reads random paths among {options.Secrets:N0} secrets{(options.Runs(ScenarioNames.KvGetScale) ? $", kv-get-scale among {options.ScaleSecrets:N0}" : "")}; kv-put writes new versions of random paths among {options.Secrets:N0}, acknowledged after fsync (group commit), on a fresh vault per row");
        Line(text, $"- vault: audit on; initialised with Argon2id m={kdf.MemoryKib} KiB, t={kdf.Iterations}, p={kdf.Parallelism} (init/unseal only); measured calls use a non-root token whose one policy grants just the scenario's paths");
        if (info.PostgresMaxConnections is { } maxConnections)
        {
            Line(text, $"- PostgreSQL 15 (the rotation tests' fixture: fsync off, log_statement=all, SCRAM logins on 127.0.0.1), max_connections={maxConnections}; rotate uses one target per client on a fresh vault per row; rotate-floor runs without a vault; kv-get-pg and kv-put-pg keep the vault's records on a second PostgreSQL 15 of their own with fsync and full-page writes on (as durable as kv-put's fsync'd log), over loopback, a database per vault");
        }
        Line(text, $"- server CPU: user+system time of the server process over the window ÷ calls; peak MB: its VmHWM {(results.Any(r => r.Server is { PeakIsWindow: false }) ? "since the process started (resetting it failed)" : "since the window started (reset through /proc/<pid>/clear_refs)")}; RSS MB: its VmRSS at the window's end; load-gen CPU: this process over the window ÷ calls");
        text.AppendLine();
        if (results.Count > 0)
        {
            text.AppendLine("| scenario | transport | payload B | clients | ops/s | p50 ms | p99 ms | p99.9 ms | mean ms | errors | server CPU µs/call | server peak MB | server RSS MB | load-gen CPU µs/call | ops/s vs echo | p99 vs echo | mean vs floor |");
            text.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        }
        foreach (var result in results)
        {
            var point = result.Point;
            var latency = result.Latency;
            var ok = latency.Count > 0;
            var echo = results.EchoFor(result, options.ReferencePayload);
            var floor = results.FloorFor(result);
            var echoP99 = echo?.Latency.PercentileNanos(99) ?? 0;
            var throughputRatio = echo is null || echo.OpsPerSecond == 0 ? "–" : Ratio(result.OpsPerSecond / echo.OpsPerSecond);
            var latencyRatio = echoP99 == 0 || !ok ? "–" : Ratio((double)latency.PercentileNanos(99) / echoP99);
            var floorRatio = floor is null || floor.Latency.Count == 0 || !ok ? "–" : Ratio(latency.MeanNanos / floor.Latency.MeanNanos);
            var memory = result.Server?.Memory;
            Line(text,
                $"| {point.Scenario} | {point.Transport ?? "–"} | {(point.Payload is { } p ? p.ToString("N0", CultureInfo.InvariantCulture) : "–")} | {point.Clients} | {result.OpsPerSecond:N0} | {Ms(latency.PercentileNanos(50), ok)} | {Ms(latency.PercentileNanos(99), ok)} | {Ms(latency.PercentileNanos(99.9), ok)} | {Ms((long)latency.MeanNanos, ok)} | {result.Errors} | {Number(result.ServerCpuMicrosPerCall)} | {Number(memory?.PeakMb)} | {Number(memory?.RssMb)} | {Number(result.GeneratorCpuMicrosPerCall)} | {throughputRatio} | {latencyRatio} | {floorRatio} |");
        }
        var thin = results.Where(r => r.Latency.Count < FewCallsPerClient * r.Point.Clients).ToList();
        if (thin.Count > 0)
        {
            text.AppendLine();
            Line(text, $"Fewer than {FewCallsPerClient} completed calls per client in the window (calls take about as long as the window; their latencies rest on few samples, so prefer a longer --duration for them): {string.Join(", ", thin.Select(r => $"{r.Point.Scenario} {r.Point.Transport ?? "–"} x{r.Point.Clients} ({r.Latency.Count} calls)"))}.");
        }
        foreach (var failed in results.Where(r => r.FirstError is not null))
        {
            text.AppendLine();
            Line(text, $"{failed.Point.Scenario} {failed.Point.Transport ?? "–"} x{failed.Point.Clients}: {failed.Errors} failed calls, first: {failed.FirstError}");
        }
        text.AppendLine();
        if (largePuts.Count > 0)
        {
            text.AppendLine(LargePutReport.Render(largePuts));
        }
        text.Append(Goals.Render(options, results));
        return text.ToString();
    }

    // Latencies are of successful calls only; a row with none has no latency to show.
    private static string Ms(long nanos, bool any) => any ? (nanos / 1e6).ToString("0.000", CultureInfo.InvariantCulture) : "–";

    private static string Number(double? value) => value is { } v ? v.ToString("N0", CultureInfo.InvariantCulture) : "–";

    internal static string Ratio(double value) => value.ToString("0.00", CultureInfo.InvariantCulture) + "×";

    private static void Line(StringBuilder text, FormattableString line) => text.AppendLine(line.ToString(CultureInfo.InvariantCulture));
}
