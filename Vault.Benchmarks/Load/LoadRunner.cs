using System.Diagnostics;
using Grpc.Core;

namespace Vault.Benchmarks.Load;

/// <summary>The outcome of one scenario at one concurrency.</summary>
/// <param name="ProcessCpu">CPU time of the whole process (load generator and servers) during the measured window.</param>
internal sealed record RunResult(string Scenario, int Clients, TimeSpan Measured, TimeSpan ProcessCpu, LatencyHistogram Latency, long Errors, string? FirstError)
{
    public double OpsPerSecond => Latency.Count / Measured.TotalSeconds;

    /// <summary>Process CPU per call (successful or not), in microseconds; less sensitive than throughput to other tenants of the machine.</summary>
    public double CpuMicrosPerCall => Latency.Count + Errors == 0 ? 0 : ProcessCpu.TotalMicroseconds / (Latency.Count + Errors);
}

/// <summary>
/// Closed-loop load: each client is an async loop that sends its next request as soon as the
/// previous one answered. Every client runs through the warmup and the measured window without
/// pausing; only calls that complete inside the window are counted.
/// </summary>
internal static class LoadRunner
{
    private const int Warmup = 0;
    private const int Measuring = 1;
    private const int Stopped = 2;
    private static readonly double NanosPerTick = 1e9 / Stopwatch.Frequency;

    public static async Task<RunResult> RunAsync(string scenario, IWorkload workload, int clients, TimeSpan warmup, TimeSpan duration, CancellationToken cancellationToken)
    {
        var phase = new Phase();
        var workers = new Task<WorkerResult>[clients];
        for (var i = 0; i < clients; i++)
        {
            var seed = HashCode.Combine(scenario, clients, i);
            workers[i] = Task.Run(() => WorkerAsync(workload, phase, seed, cancellationToken), cancellationToken);
        }

        using var process = Process.GetCurrentProcess();
        await Task.Delay(warmup, cancellationToken);
        process.Refresh();
        var cpuStarted = process.TotalProcessorTime;
        var started = Stopwatch.GetTimestamp();
        Volatile.Write(ref phase.State, Measuring);
        await Task.Delay(duration, cancellationToken);
        Volatile.Write(ref phase.State, Stopped);
        var measured = Stopwatch.GetElapsedTime(started);
        process.Refresh();
        var cpu = process.TotalProcessorTime - cpuStarted;

        var latency = new LatencyHistogram();
        long errors = 0;
        string? firstError = null;
        foreach (var result in await Task.WhenAll(workers))
        {
            latency.Add(result.Latency);
            errors += result.Errors;
            firstError ??= result.FirstError;
        }
        return new RunResult(scenario, clients, measured, cpu, latency, errors, firstError);
    }

    private static async Task<WorkerResult> WorkerAsync(IWorkload workload, Phase phase, int seed, CancellationToken cancellationToken)
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
                await workload.CallAsync(random, cancellationToken);
            }
            catch (RpcException ex) when (!cancellationToken.IsCancellationRequested)
            {
                ok = false;
                firstError ??= $"{ex.StatusCode}: {ex.Status.Detail}";
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
