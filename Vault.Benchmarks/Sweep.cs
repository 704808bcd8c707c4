using Grpc.Net.Client;
using Vault.Benchmarks.Echo;
using Vault.Benchmarks.Hosting;
using Vault.Benchmarks.Load;
using Vault.Benchmarks.Postgres;
using Vault.Protocol.V1;
using Vault.Testing.Servers;
using static Vault.Benchmarks.ScenarioNames;

namespace Vault.Benchmarks;

/// <summary>
/// Runs the rows of one invocation: for each transport, payload and client count, echo first and
/// then the vault scenarios, each against servers in their own processes.
/// </summary>
/// <remarks>
/// Read scenarios share one seeded vault per (transport, payload) that sees no writes after
/// seeding. Every writing row (kv-put, lease-checkout, rotate) gets a fresh vault, so that piled-up
/// versions, leases or history never leak into another row. rotate-floor needs no vault and no
/// transport: it runs in the first transport's block only.
/// </remarks>
internal sealed class Sweep(BenchmarkOptions options, string runDirectory) : IAsyncDisposable
{
    private const string PutPathPrefix = "bench/put/";

    // Longer than any row, so that no lease expires (and no reaper work) while rows run.
    private static readonly TimeSpan LeaseTtl = TimeSpan.FromHours(1);

    private readonly List<RunResult> _results = [];
    private readonly List<LargePutResult> _largePuts = [];
    private BenchmarkPostgres? _postgres;

    public IReadOnlyList<RunResult> Results => _results;

    /// <summary>kv-put-large, one per transport and client count; reported apart from the rows.</summary>
    public IReadOnlyList<LargePutResult> LargePuts => _largePuts;

    /// <summary>The certificate the TLS rows used, if any.</summary>
    public TlsFiles? Tls { get; private set; }

    /// <summary>PostgreSQL's <c>max_connections</c>, if it ran.</summary>
    public int? PostgresMaxConnections => _postgres?.MaxConnections;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (options.Scenarios.Any(UsesPostgres))
        {
            await Console.Error.WriteLineAsync("starting PostgreSQL 15 ...");
            _postgres = await BenchmarkPostgres.StartAsync(options.Clients.Max(), cancellationToken);
        }
        for (var i = 0; i < options.Transports.Count; i++)
        {
            var name = options.Transports[i];
            var transport = new Transport(name, name == Transport.TlsName ? Tls ??= TlsFiles.Create(runDirectory) : null);
            await RunTransportAsync(transport, first: i == 0, cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
    }

    private async Task RunTransportAsync(Transport transport, bool first, CancellationToken cancellationToken)
    {
        await using var echo = options.Runs(ScenarioNames.Echo) ? await ChildServer.StartAsync(ServeCommand.Echo, transport.ServerArgs, cancellationToken) : null;
        foreach (var payload in options.Payloads)
        {
            var isReference = payload == options.ReferencePayload;
            var value = SecretPayload.Value(payload);
            await using var reads = options.Runs(KvGet) || (isReference && options.Runs(TokenLookup))
                ? await SeededVault.StartAsync(runDirectory, transport, options.Secrets, value, cancellationToken)
                : null;
            var metricsPort = ServerHost.FreePort();
            await using var metered = isReference && options.Runs(KvGetMetrics)
                ? await SeededVault.StartAsync(runDirectory, transport, options.Secrets, value, cancellationToken, $"127.0.0.1:{metricsPort}")
                : null;
            await using var scrapes = metered is null ? null : new MetricsScraper(new Uri($"http://127.0.0.1:{metricsPort}/metrics"));
            await using var onPostgres = isReference && options.Runs(KvGetPostgres)
                ? await SeededVault.StartAsync(runDirectory, transport, options.Secrets, value, cancellationToken, storageConnectionFile: await _postgres!.CreateStorageAsync(runDirectory, cancellationToken))
                : null;
            await using var pair = isReference && (options.Runs(KvGetActive) || options.Runs(KvGetStandby) || options.Runs(KvPutActive))
                ? await NodePair.StartAsync(runDirectory, transport, await _postgres!.CreateStorageAsync(runDirectory, cancellationToken), options.Secrets, value, TimeSpan.FromSeconds(10), cancellationToken)
                : null;
            await using var scale = isReference && options.Runs(KvGetScale)
                ? await SeededVault.StartAsync(runDirectory, transport, options.ScaleSecrets, value, cancellationToken)
                : null;
            foreach (var clients in options.Clients)
            {
                // Echo first at each point, so that the ceiling and the rows compared with it are
                // measured close together on a machine whose load drifts.
                foreach (var scenario in All.Where(options.Runs))
                {
                    var runsHere = scenario switch
                    {
                        RotateFloor => first && isReference,
                        _ when ReferenceOnly(scenario) => isReference,
                        _ => UsesPayload(scenario) || isReference,
                    };
                    if (!runsHere)
                    {
                        continue;
                    }
                    if (scenario == KvPutLarge)
                    {
                        _largePuts.Add(await RunLargePutsAsync(transport, clients, cancellationToken));
                        continue;
                    }
                    var point = new Point(
                        scenario,
                        scenario == RotateFloor ? null : transport.Name,
                        UsesPayload(scenario) || ReferenceOnly(scenario) ? payload : null,
                        clients);
                    _results.Add(await RunRowAsync(point, transport, echo, reads, scenario switch { KvGetMetrics => metered, KvGetPostgres => onPostgres, KvGetActive or KvPutActive => pair!.Active, KvGetStandby => pair!.StandbyReads, _ => scale }, value, cancellationToken));
                }
            }
        }
    }

    private async Task<RunResult> RunRowAsync(Point point, Transport transport, ChildServer? echo, SeededVault? reads, SeededVault? scale, string value, CancellationToken cancellationToken)
    {
        var label = $"{point.Scenario} {point.Transport ?? "-"} {(point.Payload is { } p ? $"{p} B " : "")}x{point.Clients}";
        await using var row = new Row();
        (IWorkload, ChildServer?) setup = point.Scenario switch
        {
            ScenarioNames.Echo => (new EchoWorkload(new EchoService.EchoServiceClient(row.Channel(transport, echo!.Address)), value.Length, EchoHost.Headers), echo),
            KvGet => (ReadWorkload(row, transport, reads!), reads!.Vault.Server),
            KvGetScale or KvGetMetrics or KvGetPostgres or KvGetActive or KvGetStandby => (ReadWorkload(row, transport, scale!), scale!.Vault.Server),
            TokenLookup => (new TokenLookupWorkload(new TokenService.TokenServiceClient(row.Channel(transport, reads!.Vault.Address)), reads.Headers), reads.Vault.Server),
            KvPut => await KvPutAsync(row, transport, value, cancellationToken),
            KvPutPostgres => await KvPutAsync(row, transport, value, cancellationToken, await _postgres!.CreateStorageAsync(runDirectory, cancellationToken)),
            KvPutActive => await KvPutOnAsync(row, transport, value, scale!.Vault, cancellationToken),
            LeaseCheckout => await LeaseCheckoutAsync(row, transport, cancellationToken),
            Rotate => await RotateAsync(row, transport, point.Clients, cancellationToken),
            RotateFloor => (row.Own(await RotateFloorWorkload.CreateAsync(_postgres!, point.Clients, cancellationToken)), null),
            _ => throw new InvalidOperationException($"no workload for scenario {point.Scenario}"),
        };
        var (workload, server) = setup;
        await Console.Error.WriteAsync($"{label} ... ");
        var result = await LoadRunner.RunAsync(point, workload, server, options.Warmup, options.Duration, cancellationToken);
        await Console.Error.WriteLineAsync(
            $"{result.OpsPerSecond:N0} ops/s, p99 {result.Latency.PercentileNanos(99) / 1e6:0.000} ms, {result.Errors} errors" +
            (result.ServerCpuMicrosPerCall is { } cpu ? $", server {cpu:0} µs/call, {result.Server!.Memory.RssMb:0} MB" : ""));
        return result;
    }

    private async Task<LargePutResult> RunLargePutsAsync(Transport transport, int clients, CancellationToken cancellationToken)
    {
        await Console.Error.WriteAsync($"{KvPutLarge} {transport.Name} x{clients} (idle reader, then loaded) ... ");
        var result = await LargePutScenario.RunAsync(runDirectory, transport, clients, options.Warmup, options.Duration, cancellationToken);
        await Console.Error.WriteLineAsync(
            $"{result.Puts.Count / result.Measured.TotalSeconds:N0} puts/s, {result.Refused} refused, {result.PutErrors} failed; " +
            $"reader p99 {result.IdleRead.PercentileNanos(99) / 1e6:0.000} ms idle, {result.LoadedRead.PercentileNanos(99) / 1e6:0.000} ms loaded; " +
            $"server peak {result.LoadedServer.Memory.PeakMb:0} MB");
        return result;
    }

    private static KvGetWorkload ReadWorkload(Row row, Transport transport, SeededVault vault) =>
        new(new KvService.KvServiceClient(row.Channel(transport, vault.Vault.Address)), vault.Paths, vault.Headers);

    private async Task<(IWorkload, ChildServer?)> KvPutAsync(Row row, Transport transport, string value, CancellationToken cancellationToken, string? storageConnectionFile = null)
    {
        var vault = row.Own(await BenchmarkVault.StartAsync(runDirectory, transport, cancellationToken, storageConnectionFile: storageConnectionFile));
        return await KvPutOnAsync(row, transport, value, vault, cancellationToken);
    }

    /// <summary>kv-put on <paramref name="vault"/>, which the caller owns.</summary>
    private async Task<(IWorkload, ChildServer?)> KvPutOnAsync(Row row, Transport transport, string value, BenchmarkVault vault, CancellationToken cancellationToken)
    {
        var headers = await vault.CreateTokenAsync("bench-kv-put", [BenchmarkVault.Rule($"kv/{PutPathPrefix}*", "create", "update")], cancellationToken);
        string[] paths = [.. Enumerable.Range(0, options.Secrets).Select(i => $"{PutPathPrefix}{i:D6}")];
        return (new KvPutWorkload(new KvService.KvServiceClient(row.Channel(transport, vault.Address)), paths, value, headers), vault.Server);
    }

    private async Task<(IWorkload, ChildServer?)> LeaseCheckoutAsync(Row row, Transport transport, CancellationToken cancellationToken)
    {
        var vault = row.Own(await BenchmarkVault.StartAsync(runDirectory, transport, cancellationToken));
        var target = (await _postgres!.RegisterTargetsAsync(vault, "bench-lease", await _postgres.CreateRolesAsync(1), cancellationToken))[0];
        var headers = await vault.CreateTokenAsync("bench-lease-checkout", [BenchmarkVault.Rule($"rotation/target/{target}/credential", "read")], cancellationToken);
        return (new LeaseCheckoutWorkload(new LeaseService.LeaseServiceClient(row.Channel(transport, vault.Address)), target, LeaseTtl, headers), vault.Server);
    }

    private async Task<(IWorkload, ChildServer?)> RotateAsync(Row row, Transport transport, int clients, CancellationToken cancellationToken)
    {
        var vault = row.Own(await BenchmarkVault.StartAsync(runDirectory, transport, cancellationToken));
        var roles = await _postgres!.CreateRolesAsync(clients);
        var targets = await _postgres.RegisterTargetsAsync(vault, "bench-rotate", roles, cancellationToken);
        var headers = await vault.CreateTokenAsync("bench-rotate", [BenchmarkVault.Rule("rotation/target/+", "rotate")], cancellationToken);
        return (new RotateWorkload(new TargetService.TargetServiceClient(row.Channel(transport, vault.Address)), targets, headers), vault.Server);
    }

    /// <summary>What one row opened (channels, a fresh vault, PostgreSQL sessions), closed when the row ends.</summary>
    private sealed class Row : IAsyncDisposable
    {
        private readonly List<object> _owned = [];

        public GrpcChannel Channel(Transport transport, Uri address) => Own(transport.OpenChannel(address));

        public T Own<T>(T resource)
            where T : class
        {
            _owned.Add(resource);
            return resource;
        }

        public async ValueTask DisposeAsync()
        {
            // Channels first, then the servers they talk to.
            for (var i = _owned.Count - 1; i >= 0; i--)
            {
                switch (_owned[i])
                {
                    case IAsyncDisposable asyncDisposable:
                        await asyncDisposable.DisposeAsync();
                        break;
                    case IDisposable disposable:
                        disposable.Dispose();
                        break;
                }
            }
        }
    }
}
