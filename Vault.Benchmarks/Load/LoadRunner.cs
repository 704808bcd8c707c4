using System.Diagnostics;
using Grpc.Core;
using Vault.Benchmarks.Hosting;

namespace Vault.Benchmarks.Load;

/// <summary>
/// Closed-loop load: each client is an async loop that sends its next request as soon as the
/// previous one answered. Every client runs through the warmup and the measured window without
/// pausing; only calls that complete inside the window are counted. The server process's CPU
/// and memory are read at the window's edges.
/// </summary>
internal static class LoadRunner
{
    private const int Warmup = 0;
    private const int Measuring = 1;
    private const int Stopped = 2;
    private static readonly double NanosPerTick = 1e9 / Stopwatch.Frequency;

    public static async Task<RunResult> RunAsync(Point point, IWorkload workload, ChildServer? server, TimeSpan warmup, TimeSpan duration, CancellationToken cancellationToken)
    {
        var phase = new Phase();
        var workers = new Task<WorkerResult>[point.Clients];
        for (var i = 0; i < point.Clients; i++)
        {
            var client = i;
            var seed = HashCode.Combine(point, i);
            workers[i] = Task.Run(() => WorkerAsync(workload, client, phase, seed, cancellationToken), cancellationToken);
        }

        using var self = Process.GetCurrentProcess();
        await Task.Delay(warmup, cancellationToken);
        var peakIsWindow = server is not null && ProcessMemory.TryResetPeak(server.Id);
        var serverCpuStarted = server?.Cpu() ?? TimeSpan.Zero;
        self.Refresh();
        var cpuStarted = self.TotalProcessorTime;
        var started = Stopwatch.GetTimestamp();
        Volatile.Write(ref phase.State, Measuring);
        await Task.Delay(duration, cancellationToken);
        Volatile.Write(ref phase.State, Stopped);
        var measured = Stopwatch.GetElapsedTime(started);
        self.Refresh();
        var cpu = self.TotalProcessorTime - cpuStarted;
        var usage = server is null ? null : new ServerUsage(server.Cpu() - serverCpuStarted, ProcessMemory.Read(server.Id), peakIsWindow);

        var latency = new LatencyHistogram();
        long errors = 0;
        string? firstError = null;
        foreach (var result in await Task.WhenAll(workers))
        {
            latency.Add(result.Latency);
            errors += result.Errors;
            firstError ??= result.FirstError;
        }
        return new RunResult(point, measured, cpu, usage, latency, errors, firstError);
    }

    private static async Task<WorkerResult> WorkerAsync(IWorkload workload, int client, Phase phase, int seed, CancellationToken cancellationToken)
    {
        var latency = new LatencyHistogram();
        var random = new Random(seed);
        long errors = 0;
        string? firstError = null;
        while (Volatile.Read(ref phase.State) != Stopped && !cancellationToken.IsCancellationRequested)
        {
            var started = Stopwatch.GetTimestamp();
            var ok = true;
            try
            {
                await workload.CallAsync(client, random, cancellationToken);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                // gRPC status, a rotation that failed, a PostgreSQL error: all count as a failed call.
                ok = false;
                firstError ??= ex is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : $"{ex.GetType().Name}: {ex.Message}";
            }
            var nanos = (long)((Stopwatch.GetTimestamp() - started) * NanosPerTick);
            if (Volatile.Read(ref phase.State) == Measuring)
            {
                if (ok)
                {
                    latency.Record(nanos);
                }
                else
                {
                    errors++;
                }
            }
        }
        return new WorkerResult(latency, errors, firstError);
    }

    private sealed class Phase
    {
        public int State = Warmup;
    }

    private sealed record WorkerResult(LatencyHistogram Latency, long Errors, string? FirstError);
}
