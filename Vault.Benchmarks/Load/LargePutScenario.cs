using System.Diagnostics;
using Grpc.Core;
using Vault.Benchmarks.Hosting;
using Vault.Protocol.V1;

namespace Vault.Benchmarks.Load;

/// <summary>What kv-put-large measured at one transport and client count.</summary>
/// <param name="Puts">The large puts that succeeded (latencies) in the loaded window.</param>
/// <param name="Refused">Puts answered RESOURCE_EXHAUSTED in the loaded window (retried after a pause, like a client that honours "retry").</param>
/// <param name="PutErrors">Puts that failed with any other status in the loaded window.</param>
/// <param name="IdleRead">The small reader alone, before any put.</param>
/// <param name="LoadedRead">The small reader while the puts run.</param>
/// <param name="IdleServer">The server during the idle window; <paramref name="LoadedServer"/> during the loaded one.</param>
internal sealed record LargePutResult(
    string Transport,
    int Clients,
    int ValueBytes,
    TimeSpan Measured,
    LatencyHistogram Puts,
    long Refused,
    long PutErrors,
    string? FirstPutError,
    LatencyHistogram IdleRead,
    LatencyHistogram LoadedRead,
    long ReadErrors,
    string? FirstReadError,
    ServerUsage IdleServer,
    ServerUsage LoadedServer);

/// <summary>
/// kv-put-large: N clients put secrets of the largest value the default limit takes (one key,
/// 1 MiB − 5 bytes of value) as fast as they are answered, while one more client, on a channel
/// of its own (another application), reads a 1 KB secret in a closed loop. The reader runs alone
/// first (idle), then beside the puts (loaded), each for warmup + duration on the same fresh
/// vault; the server's peak memory (VmHWM, reset at each window's start) is read at the end of
/// each window. A put refused with RESOURCE_EXHAUSTED is retried after 20–60 ms, as a client
/// that honours the server's "retry" would; the refusals are counted, not treated as errors.
/// </summary>
internal static class LargePutScenario
{
    /// <summary>The default Vault:MaxSecretBytes (1 MiB) minus the key "value".</summary>
    public const int ValueBytes = (1024 * 1024) - 5;

    private const string PutPrefix = "bench/large/put/";
    private const string ReadPath = "bench/large/read";
    private const int PutPaths = 64;

    public static async Task<LargePutResult> RunAsync(string runDirectory, Transport transport, int clients, TimeSpan warmup, TimeSpan duration, CancellationToken cancellationToken)
    {
        await using var vault = await BenchmarkVault.StartAsync(runDirectory, transport, cancellationToken);
        await new KvService.KvServiceClient(vault.SetupChannel).PutAsync(SecretPayload.PutRequest(ReadPath, SecretPayload.Value(1024)), vault.RootHeaders, cancellationToken: cancellationToken);
        var readHeaders = await vault.CreateTokenAsync("bench-large-read", [BenchmarkVault.Rule($"kv/{ReadPath}", "read")], cancellationToken);
        var putHeaders = await vault.CreateTokenAsync("bench-large-put", [BenchmarkVault.Rule($"kv/{PutPrefix}*", "create", "update")], cancellationToken);
        using var readChannel = transport.OpenChannel(vault.Address);
        using var putChannel = transport.OpenChannel(vault.Address);
        var reader = new KvService.KvServiceClient(readChannel);
        var putter = new KvService.KvServiceClient(putChannel);
        var readRequest = new GetSecretRequest { Path = ReadPath };
        var value = SecretPayload.Value(ValueBytes);
        PutSecretRequest[] puts = [.. Enumerable.Range(0, PutPaths).Select(i => SecretPayload.PutRequest($"{PutPrefix}{i:D3}", value))];

        // Idle: the reader alone.
        var idle = await MeasureAsync(vault.Server, warmup, duration, window => ReadLoopAsync(reader, readRequest, readHeaders, window, cancellationToken));
        await vault.Server.SettleAsync(cancellationToken);

        // Loaded: the same reader beside the put clients.
        var putState = new PutCounters();
        var loaded = await MeasureAsync(vault.Server, warmup, duration, window =>
        {
            var putters = Enumerable.Range(0, clients).Select(i => Task.Run(() => PutLoopAsync(putter, puts, putHeaders, i, window, putState, cancellationToken), cancellationToken));
            return Task.WhenAll([ReadLoopAsync(reader, readRequest, readHeaders, window, cancellationToken), .. putters]);
        });
        return new LargePutResult(transport.Name, clients, ValueBytes, loaded.Measured,
            putState.Latency, putState.Refused, putState.Errors, putState.FirstError,
            idle.Read.Latency, loaded.Read.Latency, idle.Read.Errors + loaded.Read.Errors, idle.Read.FirstError ?? loaded.Read.FirstError,
            idle.Server, loaded.Server);
    }

    private static async Task<(TimeSpan Measured, ReadCounters Read, ServerUsage Server)> MeasureAsync(ChildServer server, TimeSpan warmup, TimeSpan duration, Func<Window, Task> load)
    {
        var window = new Window();
        var running = load(window);
        await Task.Delay(warmup);
        var peakIsWindow = ProcessMemory.TryResetPeak(server.Id);
        var cpuStarted = server.Cpu();
        var started = Stopwatch.GetTimestamp();
        Volatile.Write(ref window.State, Window.Measuring);
        await Task.Delay(duration);
        Volatile.Write(ref window.State, Window.Stopped);
        var measured = Stopwatch.GetElapsedTime(started);
        var usage = new ServerUsage(server.Cpu() - cpuStarted, ProcessMemory.Read(server.Id), peakIsWindow);
        await running;
        return (measured, window.Read, usage);
    }

    private static async Task ReadLoopAsync(KvService.KvServiceClient client, GetSecretRequest request, Metadata headers, Window window, CancellationToken cancellationToken)
    {
        var read = window.Read;
        while (Volatile.Read(ref window.State) != Window.Stopped && !cancellationToken.IsCancellationRequested)
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                await client.GetAsync(request, headers, cancellationToken: cancellationToken);
                if (Volatile.Read(ref window.State) == Window.Measuring)
                {
                    read.Latency.Record((long)Stopwatch.GetElapsedTime(started).TotalNanoseconds);
                }
            }
            catch (RpcException ex) when (!cancellationToken.IsCancellationRequested)
            {
                read.Errors++;
                read.FirstError ??= $"{ex.StatusCode}: {ex.Status.Detail}";
            }
        }
    }

    private static async Task PutLoopAsync(KvService.KvServiceClient client, PutSecretRequest[] requests, Metadata headers, int clientIndex, Window window, PutCounters counters, CancellationToken cancellationToken)
    {
        var random = new Random(clientIndex);
        var latency = new LatencyHistogram();
        long refused = 0, errors = 0;
        string? firstError = null;
        while (Volatile.Read(ref window.State) != Window.Stopped && !cancellationToken.IsCancellationRequested)
        {
            var started = Stopwatch.GetTimestamp();
            var measuring = Volatile.Read(ref window.State) == Window.Measuring;
            try
            {
                await client.PutAsync(requests[random.Next(requests.Length)], headers, cancellationToken: cancellationToken);
                if (measuring && Volatile.Read(ref window.State) == Window.Measuring)
                {
                    latency.Record((long)Stopwatch.GetElapsedTime(started).TotalNanoseconds);
                }
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.ResourceExhausted && !cancellationToken.IsCancellationRequested)
            {
                refused += measuring ? 1 : 0;
                await Task.Delay(random.Next(20, 61), cancellationToken);
            }
            catch (RpcException ex) when (!cancellationToken.IsCancellationRequested)
            {
                errors += measuring ? 1 : 0;
                firstError ??= $"{ex.StatusCode}: {ex.Status.Detail}";
                await Task.Delay(random.Next(20, 61), cancellationToken);
            }
        }
        counters.Add(latency, refused, errors, firstError);
    }

    private sealed class Window
    {
        public const int Warmup = 0;
        public const int Measuring = 1;
        public const int Stopped = 2;
        public int State = Warmup;

        /// <summary>One reader client: touched by its loop only, read after it ends.</summary>
        public ReadCounters Read { get; } = new();
    }

    private sealed class ReadCounters
    {
        public LatencyHistogram Latency { get; } = new();
        public long Errors { get; set; }
        public string? FirstError { get; set; }
    }

    private sealed class PutCounters
    {
        private readonly Lock _lock = new();

        public LatencyHistogram Latency { get; } = new();
        public long Refused { get; private set; }
        public long Errors { get; private set; }
        public string? FirstError { get; private set; }

        public void Add(LatencyHistogram latency, long refused, long errors, string? firstError)
        {
            lock (_lock)
            {
                Latency.Add(latency);
                Refused += refused;
                Errors += errors;
                FirstError ??= firstError;
            }
        }
    }
}
