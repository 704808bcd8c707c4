using System.Net.Http;
using Grpc.Core;
using Grpc.Net.Client;
using Vault.Benchmarks;
using Vault.Benchmarks.Echo;
using Vault.Benchmarks.Hosting;
using Vault.Benchmarks.Load;
using Vault.Protocol.V1;

if (args is ["--help"] or ["-h"])
{
    Console.WriteLine(BenchmarkOptions.Usage);
    return 0;
}
BenchmarkOptions options;
try
{
    options = BenchmarkOptions.Parse(args);
}
catch (FormatException ex)
{
    Console.Error.WriteLine($"vault-bench: {ex.Message}");
    Console.Error.WriteLine(BenchmarkOptions.Usage);
    return 2;
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
var cancellationToken = stop.Token;

await using var echo = options.Scenarios.Contains(ScenarioNames.Echo) ? await EchoHost.StartAsync(cancellationToken) : null;
var value = SecretPayload.Value(options.Payload);
string[] getPaths = [.. Enumerable.Range(0, options.Secrets).Select(i => $"bench/get/{i:D6}")];
string[] putPaths = [.. Enumerable.Range(0, options.Secrets).Select(i => $"bench/put/{i:D6}")];

// kv-get rows share one vault, seeded once; it sees no writes after seeding. Every kv-put row
// gets a fresh vault, so that versions piling up (or a store a failed row left broken) never
// leak into another row.
await using var readVault = options.Scenarios.Contains(ScenarioNames.KvGet) ? await BenchmarkVault.StartAsync(cancellationToken) : null;
if (readVault is not null)
{
    Console.Error.Write($"seeding {getPaths.Length} secrets of {options.Payload} bytes ... ");
    var seeded = await SeedAsync(readVault, getPaths, value, cancellationToken);
    Console.Error.WriteLine($"{seeded.TotalSeconds:0.0} s");
}

var results = new List<RunResult>();
foreach (var clients in options.Clients)
{
    // Echo first at each concurrency, so that its ceiling and the vault rows it is compared
    // with are measured close together on a machine whose load drifts.
    foreach (var scenario in BenchmarkOptions.AllScenarios.Where(options.Scenarios.Contains))
    {
        await using var writeVault = scenario == ScenarioNames.KvPut ? await BenchmarkVault.StartAsync(cancellationToken) : null;
        var address = scenario switch
        {
            ScenarioNames.Echo => echo!.Address,
            ScenarioNames.KvGet => readVault!.Address,
            _ => writeVault!.Address,
        };
        var headers = scenario switch
        {
            ScenarioNames.Echo => EchoHost.Headers,
            ScenarioNames.KvGet => readVault!.RootHeaders(),
            _ => writeVault!.RootHeaders(),
        };
        using var channel = OpenChannel(address);
        IWorkload workload = scenario switch
        {
            ScenarioNames.Echo => new EchoWorkload(new EchoService.EchoServiceClient(channel), options.Payload, headers),
            ScenarioNames.KvGet => new KvGetWorkload(new KvService.KvServiceClient(channel), getPaths, headers),
            _ => new KvPutWorkload(new KvService.KvServiceClient(channel), putPaths, value, headers),
        };
        Console.Error.Write($"{scenario} x{clients} ... ");
        var result = await LoadRunner.RunAsync(scenario, workload, clients, options.Warmup, options.Duration, cancellationToken);
        Console.Error.WriteLine($"{result.OpsPerSecond:N0} ops/s, p99 {result.Latency.PercentileNanos(99) / 1e6:0.000} ms, {result.Errors} errors");
        results.Add(result);
    }
}

Console.WriteLine(Report.Render(options, args, results));
return results.Any(r => r.Errors > 0) ? 1 : 0;

// One writer at a time: the store fails under concurrent reads and writes (see docs/BENCHMARKS.md),
// and seeding is not what is measured.
static async Task<TimeSpan> SeedAsync(BenchmarkVault vault, string[] paths, string value, CancellationToken cancellationToken)
{
    var started = System.Diagnostics.Stopwatch.GetTimestamp();
    using var channel = OpenChannel(vault.Address);
    var kv = new KvService.KvServiceClient(channel);
    var headers = vault.RootHeaders();
    foreach (var path in paths)
    {
        await kv.PutAsync(SecretPayload.PutRequest(path, value), headers, cancellationToken: cancellationToken);
    }
    return System.Diagnostics.Stopwatch.GetElapsedTime(started);
}

// One channel per run, shared by all its clients the way an application shares one client.
// Several HTTP/2 connections are allowed so that more clients than the server's stream limit
// (Kestrel: 100 per connection) queue on a new connection instead of waiting for a stream.
static GrpcChannel OpenChannel(Uri address) => GrpcChannel.ForAddress(address, new GrpcChannelOptions
{
    HttpHandler = new SocketsHttpHandler
    {
        EnableMultipleHttp2Connections = true,
        PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
    },
    DisposeHttpClient = true,
});
