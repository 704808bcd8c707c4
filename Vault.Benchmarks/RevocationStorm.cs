using System.Diagnostics;
using System.Globalization;
using Grpc.Core;
using Npgsql;
using Vault.Benchmarks.Hosting;
using Vault.Benchmarks.Postgres;
using Vault.Protocol.V1;

namespace Vault.Benchmarks;

/// <summary>
/// <c>storm [--leases N] [--grant]</c> (issue 16, item 5): N dynamic PostgreSQL users whose leases
/// expire together. A vault in its own process issues N credentials of one role (16 callers), each
/// with the TTL that makes it end at one common instant; from that instant the reaper drops them.
/// Measured: the time from the instant until the last user is gone (polled in <c>pg_roles</c>),
/// beside a plain client dropping N users made the same way with the reaper's parallelism (one
/// session, one statement after another) on the same server in the same run; how many leases ended
/// irrevocable; kv-get latency on the vault (one caller, one read after another) for the storm's
/// duration, beside the same before it. Prints markdown.
/// <para>
/// The users log in and hold nothing, so the plain client's drop is a bare <c>DROP ROLE</c> (the
/// issue's floor). With <c>--grant</c> each user is also granted <c>CONNECT</c> on the database (as
/// a role's creation statements usually grant something), and the plain client must revoke it
/// before dropping: <c>DROP OWNED BY x; DROP ROLE x</c>.
/// </para>
/// </summary>
internal static class RevocationStorm
{
    private const int Issuers = 16;

    /// <summary>
    /// The reaper's parallelism, and so the floor's: one admin session per target, on which it drops
    /// the users due together in batches (concurrent role changes on one PostgreSQL collide in its
    /// catalog: ending four leases at once on four sessions was tried and was four times slower).
    /// </summary>
    private const int Parallelism = 1;
    private const string Role = "storm";

    public static bool Handles(IReadOnlyList<string> args) => args.Count > 0 && args[0] == "storm";

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        var count = 10_000;
        var grant = false;
        for (var i = 1; i < args.Count; i++)
        {
            if (args[i] == "--leases" && i + 1 < args.Count && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) && parsed > 0)
            {
                count = parsed;
                i++;
            }
            else if (args[i] == "--grant")
            {
                grant = true;
            }
            else
            {
                await Console.Error.WriteLineAsync("vault-bench storm: usage: storm [--leases N] [--grant]");
                return 2;
            }
        }
        var runDirectory = Directory.CreateTempSubdirectory("vault-bench-storm-").FullName;
        var cancellationToken = CancellationToken.None;
        try
        {
            await using var postgres = await BenchmarkPostgres.StartAsync(Issuers, cancellationToken);
            var transport = new Transport(Transport.Plaintext, null);
            await using var vault = await BenchmarkVault.StartAsync(runDirectory, transport, cancellationToken);
            var targets = await postgres.RegisterTargetsAsync(vault, "storm", await postgres.CreateRolesAsync(1), cancellationToken);
            var leases = new LeaseService.LeaseServiceClient(vault.SetupChannel);
            var connectGrant = $"GRANT CONNECT ON DATABASE {postgres.TargetConnection.Database} TO {{{{name}}}}";
            foreach (var role in new[] { Role, "calibrate" })
            {
                var definition = new DynamicRole { Name = role, Target = targets[0], MaxTtl = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromDays(1)) };
                if (grant)
                {
                    definition.CreationStatements.Add(connectGrant);
                }
                await leases.PutDynamicRoleAsync(new PutDynamicRoleRequest { Role = definition }, vault.RootHeaders);
            }
            var kv = new KvService.KvServiceClient(vault.SetupChannel);
            await kv.PutAsync(new PutSecretRequest { Path = "bench/storm/probe", Data = { ["v"] = new string('x', 1024) } }, vault.RootHeaders);

            // How fast this vault issues, so that every lease can be given a TTL ending at one instant.
            // Its leases end by expiry too, so the reaper's drop path has run (and been compiled)
            // before the storm: the storm measures a vault that has ended leases before.
            var calibration = Stopwatch.StartNew();
            await IssueAsync(leases, vault.RootHeaders, "calibrate", 400, _ => TimeSpan.FromSeconds(15));
            var rate = 400 / calibration.Elapsed.TotalSeconds;
            await using (var calibrated = await postgres.OpenAdminAsync(cancellationToken))
            {
                while (await CountUsersAsync(calibrated, "calibrate") > 0)
                {
                    await Task.Delay(200);
                }
            }
            var end = DateTimeOffset.UtcNow + TimeSpan.FromSeconds((count / rate * 1.5) + 20);
            await Console.Error.WriteAsync($"issuing {count:N0} credentials ({rate:0}/s calibrated), all ending at {end:HH:mm:ss} ... ");
            var issuing = Stopwatch.StartNew();
            await IssueAsync(leases, vault.RootHeaders, Role, count, _ => TimeSpan.FromMilliseconds(Math.Round((end - DateTimeOffset.UtcNow).TotalMilliseconds)));
            await Console.Error.WriteLineAsync($"{issuing.Elapsed.TotalSeconds:0.0} s");
            if (DateTimeOffset.UtcNow + TimeSpan.FromSeconds(12) > end)
            {
                throw new InvalidOperationException("issuing took longer than calibrated: the leases would not end together; run again on a quieter machine");
            }
            await using var admin = await postgres.OpenAdminAsync(cancellationToken);
            var users = await CountUsersAsync(admin);

            // kv-get before the storm (10 s), then through it, one read after another.
            var idle = await ProbeAsync(kv, vault.RootHeaders, () => DateTimeOffset.UtcNow < end - TimeSpan.FromSeconds(1) && DateTimeOffset.UtcNow < end);
            await Task.Delay(end - DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(1) is { Ticks: > 0 } wait ? wait : TimeSpan.Zero);
            var storm = Stopwatch.StartNew();
            var dropped = TimeSpan.Zero;
            using var stop = new CancellationTokenSource();
            var watcher = Task.Run(async () =>
            {
                await using var counter = await postgres.OpenAdminAsync(CancellationToken.None);
                while (await CountUsersAsync(counter) > 0)
                {
                    await Task.Delay(20);
                }
                dropped = storm.Elapsed;
                await stop.CancelAsync();
            });
            var during = await ProbeAsync(kv, vault.RootHeaders, () => !stop.IsCancellationRequested && storm.Elapsed < TimeSpan.FromMinutes(10));
            await watcher;
            var remaining = await leases.ListLeasesAsync(new ListLeasesRequest { Prefix = $"dynamic/{Role}/" }, vault.RootHeaders);
            var irrevocable = remaining.Leases.Count(l => l.State == LeaseState.Irrevocable);

            // The floor: the same number of roles dropped by a plain client with the reaper's
            // parallelism (a session per concurrent drop).
            var floorGrant = grant ? $" EXECUTE format('{connectGrant.Replace("{{name}}", "storm_floor_%s", StringComparison.Ordinal)}', i);" : "";
            await using (var create = new NpgsqlCommand($"DO $$ BEGIN FOR i IN 1..{count} LOOP EXECUTE format('CREATE ROLE storm_floor_%s LOGIN', i);{floorGrant} END LOOP; END $$", admin))
            {
                create.CommandTimeout = 600;
                await create.ExecuteNonQueryAsync();
            }
            var sessions = new List<NpgsqlConnection>();
            for (var s = 0; s < Parallelism; s++)
            {
                sessions.Add(await postgres.OpenAdminAsync(cancellationToken));
            }
            var floor = Stopwatch.StartNew();
            var nextDrop = 0;
            await Task.WhenAll(sessions.Select(session => Task.Run(async () =>
            {
                for (var i = Interlocked.Increment(ref nextDrop); i <= count; i = Interlocked.Increment(ref nextDrop))
                {
                    await using var drop = new NpgsqlCommand(grant ? $"DROP OWNED BY storm_floor_{i}; DROP ROLE storm_floor_{i}" : $"DROP ROLE storm_floor_{i}", session);
                    await drop.ExecuteNonQueryAsync();
                }
            })));
            var floorTime = floor.Elapsed;
            foreach (var session in sessions)
            {
                await session.DisposeAsync();
            }

            Console.WriteLine($"Revocation storm: {count:N0} dynamic PostgreSQL users ({users:N0} made){(grant ? ", each granted CONNECT," : "")} whose leases end at one instant, LiteDB storage, plaintext HTTP/2 on loopback:");
            Console.WriteLine();
            Console.WriteLine($"| users | all dropped by the vault | {(grant ? "DROP OWNED + DROP ROLE" : "DROP ROLE")} floor ({Parallelism} session{(Parallelism == 1 ? "" : "s")}) | vault / floor | irrevocable | kv-get p50 / p99 / max before | kv-get p50 / p99 / max during | p99 during / before |");
            Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|");
            Console.WriteLine($"| {count:N0} | {dropped.TotalSeconds:0.00} s | {floorTime.TotalSeconds:0.00} s | {dropped / floorTime:0.00}× | {irrevocable} | " +
                $"{Percentile(idle, 0.5):0.0} / {Percentile(idle, 0.99):0.0} / {idle.Max():0.0} ms ({idle.Count:N0}) | {Percentile(during, 0.5):0.0} / {Percentile(during, 0.99):0.0} / {during.Max():0.0} ms ({during.Count:N0}) | {Percentile(during, 0.99) / Percentile(idle, 0.99):0.0}× |");
            Console.WriteLine();
            Console.WriteLine($"Goals (issue 16): dropped within 2 × the floor: {(dropped <= 2 * floorTime ? "met" : "missed")}; none irrevocable: {(irrevocable == 0 ? "met" : "missed")}; " +
                $"kv-get p99 during ≤ 5 × idle: {(Percentile(during, 0.99) <= 5 * Percentile(idle, 0.99) ? "met" : "missed")}.");
            return 0;
        }
        finally
        {
            try
            {
                Directory.Delete(runDirectory, recursive: true);
            }
            catch (IOException)
            {
                // Left for the OS's temp cleanup.
            }
        }
    }

    private static async Task IssueAsync(LeaseService.LeaseServiceClient leases, Metadata root, string role, int count, Func<int, TimeSpan> ttl)
    {
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, Issuers).Select(_ => Task.Run(async () =>
        {
            for (var i = Interlocked.Increment(ref next); i < count; i = Interlocked.Increment(ref next))
            {
                await leases.IssueCredentialAsync(new IssueCredentialRequest { Role = role, Ttl = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(ttl(i)) }, root);
            }
        })));
    }

    private static async Task<long> CountUsersAsync(NpgsqlConnection admin, string role = Role)
    {
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v\\_{role}\\_%'", admin);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>kv-get latencies (ms), one read after another, while <paramref name="go"/> holds.</summary>
    private static async Task<List<double>> ProbeAsync(KvService.KvServiceClient kv, Metadata root, Func<bool> go)
    {
        var samples = new List<double>();
        var started = Stopwatch.StartNew();
        while (go())
        {
            var one = Stopwatch.StartNew();
            await kv.GetAsync(new GetSecretRequest { Path = "bench/storm/probe" }, root);
            samples.Add(one.Elapsed.TotalMilliseconds);
            await Task.Delay(5);
        }
        return samples.Count > 0 ? samples : [0];
    }

    private static double Percentile(List<double> samples, double p)
    {
        var sorted = samples.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
    }
}
