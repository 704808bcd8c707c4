using Vault.Benchmarks.Hosting;

namespace Vault.Benchmarks.Load;

/// <summary>Where a row sits in the sweep.</summary>
/// <param name="Transport"><c>plaintext</c> or <c>tls</c>; null for rows that use no gRPC server (rotate-floor).</param>
/// <param name="Payload">Value / echo size in bytes; null for scenarios whose requests do not carry one.</param>
internal sealed record Point(string Scenario, string? Transport, int? Payload, int Clients);

/// <summary>What the server process used during the measured window.</summary>
/// <param name="Cpu">User plus system CPU time of the server process in the window.</param>
/// <param name="Memory">At the end of the window: VmHWM (the peak since the window started when <paramref name="PeakIsWindow"/>, else since the process started) and VmRSS.</param>
internal sealed record ServerUsage(TimeSpan Cpu, ProcessMemory Memory, bool PeakIsWindow);

/// <summary>The outcome of one scenario at one point of the sweep.</summary>
/// <param name="GeneratorCpu">CPU time of this process (the load generator) during the measured window.</param>
/// <param name="Server">The server process's usage; null for rows with no server process of ours.</param>
internal sealed record RunResult(Point Point, TimeSpan Measured, TimeSpan GeneratorCpu, ServerUsage? Server, LatencyHistogram Latency, long Errors, string? FirstError)
{
    public double OpsPerSecond => Latency.Count / Measured.TotalSeconds;

    private long Calls => Latency.Count + Errors;

    /// <summary>Server CPU per call (successful or not), in microseconds.</summary>
    public double? ServerCpuMicrosPerCall => Server is null || Calls == 0 ? null : Server.Cpu.TotalMicroseconds / Calls;

    /// <summary>Load-generator CPU per call, in microseconds.</summary>
    public double? GeneratorCpuMicrosPerCall => Calls == 0 ? null : GeneratorCpu.TotalMicroseconds / Calls;
}
