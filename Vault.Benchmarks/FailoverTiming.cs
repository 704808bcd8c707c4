using System.Diagnostics;
using System.Globalization;
using Grpc.Core;
using Vault.Benchmarks.Hosting;
using Vault.Client;
using Vault.Protocol.V1;
using Vault.Testing.Servers;

namespace Vault.Benchmarks;

/// <summary>
/// <c>failover [--times N] [--ttl T]</c>: how long a vault of two nodes on PostgreSQL (a durable
/// PostgreSQL 15 of its own, loopback) takes to serve writes again when its active node is
/// SIGKILLed. Each round starts both nodes on a fresh database, keeps one client (given both
/// addresses, as an application would be) writing, kills the active node, and times from the kill
/// until the standby says it is active and until the client's first write after the kill is
/// acknowledged. The term (<c>Vault:LeaderLeaseTtl</c>) bounds it: a term must lapse before a
/// standby may take over. Prints a markdown table.
/// </summary>
internal static class FailoverTiming
{
    public static bool Handles(IReadOnlyList<string> args) => args.Count > 0 && args[0] == "failover";

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        var times = 5;
        var ttl = TimeSpan.FromSeconds(10);
        for (var i = 1; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--times" when i + 1 < args.Count && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var n) && n > 0:
                    times = n;
                    i++;
                    break;
                case "--ttl" when i + 1 < args.Count && TimeSpan.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var t) && t >= TimeSpan.FromSeconds(2):
                    ttl = t;
                    i++;
                    break;
                default:
                    await Console.Error.WriteLineAsync($"failover: unexpected argument '{args[i]}' (--times N, --ttl HH:MM:SS of at least 2 s)");
                    return 2;
            }
        }
        var runDirectory = Directory.CreateTempSubdirectory("vault-bench-failover-").FullName;
        try
        {
            await using var pg = await PostgresServer.StartDurableAsync();
            var transport = new Transport(Transport.Plaintext, null);
            var toActive = new List<double>();
            var toWrite = new List<double>();
            for (var round = 0; round < times; round++)
            {
                var database = $"vault_failover_{round}";
                await pg.ExecuteAsync($"CREATE DATABASE {database}");
                var file = Path.Combine(runDirectory, $"{database}.connection");
                await File.WriteAllTextAsync(file, pg.ConnectionString(pg.SuperUser, pg.SuperPassword, database));
                await using var a = await BenchmarkVault.StartAsync(runDirectory, transport, CancellationToken.None, storageConnectionFile: file, node: ("failover-a", ttl, null));
                await using var b = await BenchmarkVault.StartAsync(runDirectory, transport, CancellationToken.None, storageConnectionFile: file, node: ("failover-b", ttl, a.RootToken));
                var standby = new SystemService.SystemServiceClient(b.SetupChannel);
                if ((await standby.StatusAsync(new StatusRequest())).Active)
                {
                    throw new InvalidOperationException("the second node took the term: the first should hold it");
                }
                var (active, written) = await KillAndTimeAsync(a, b, standby, ttl);
                toActive.Add(active);
                toWrite.Add(written);
                await Console.Error.WriteLineAsync($"failover round {round + 1}: standby active after {active:0} ms, first write after {written:0} ms");
            }
            toActive.Sort();
            toWrite.Sort();
            Console.WriteLine($"Failover of two nodes on PostgreSQL 15 (durable, loopback), term {ttl.TotalSeconds:0} s (renewed every {ttl.TotalSeconds / 3:0.#} s), the active node SIGKILLed under one writing client, {times} rounds, ms from the kill:");
            Console.WriteLine();
            Console.WriteLine("| until | min | median | max |");
            Console.WriteLine("|---|---:|---:|---:|");
            Console.WriteLine($"| the standby is active | {toActive[0]:0} | {toActive[toActive.Count / 2]:0} | {toActive[^1]:0} |");
            Console.WriteLine($"| a write is acknowledged | {toWrite[0]:0} | {toWrite[toWrite.Count / 2]:0} | {toWrite[^1]:0} |");
            return 0;
        }
        finally
        {
            try
            {
                Directory.Delete(runDirectory, recursive: true);
            }
            catch (IOException ex)
            {
                await Console.Error.WriteLineAsync($"failover: could not delete {runDirectory}: {ex.Message}");
            }
        }
    }

    private static async Task<(double Active, double Written)> KillAndTimeAsync(BenchmarkVault a, BenchmarkVault b, SystemService.SystemServiceClient standby, TimeSpan ttl)
    {
        var giveUp = Stopwatch.GetTimestamp();
        using var client = new VaultClient(new VaultClientOptions { Address = $"{a.Address},{b.Address}", Token = a.RootToken, Timeout = TimeSpan.FromMinutes(2) });
        long killedAt = 0;
        long firstAfter = 0;
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                var sent = Stopwatch.GetTimestamp();
                try
                {
                    await client.PutSecretAsync($"failover/{n}", new Dictionary<string, string> { ["v"] = "x" });
                    if (Volatile.Read(ref killedAt) is var killed and > 0 && sent > killed)
                    {
                        // The first write sent after the kill (one sent before may still be answered by the dying node).
                        Interlocked.CompareExchange(ref firstAfter, Stopwatch.GetTimestamp(), 0);
                    }
                }
                catch (RpcException)
                {
                    // The write in flight to the killed node: its fate is unknown, and not retried.
                }
            }
        });
        // At a random point of the renewal cycle (a third of a term), after a second of writes.
        await Task.Delay(TimeSpan.FromSeconds(1) + (ttl / 3 * Random.Shared.NextDouble()));
        a.Server.KillNow();
        // From when it is gone: a write sent while the signal was on its way could still be answered by it.
        Volatile.Write(ref killedAt, Stopwatch.GetTimestamp());
        double active;
        while (true)
        {
            try
            {
                if ((await standby.StatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(5))).Active)
                {
                    active = Stopwatch.GetElapsedTime(killedAt).TotalMilliseconds;
                    break;
                }
            }
            catch (RpcException)
            {
                // Busy taking over: ask again.
            }
            await Task.Delay(10);
            Bounded(giveUp, ttl);
        }
        while (Interlocked.Read(ref firstAfter) == 0)
        {
            await Task.Delay(10);
            Bounded(giveUp, ttl);
        }
        await stop.CancelAsync();
        await writer;
        return (active, Stopwatch.GetElapsedTime(killedAt, firstAfter).TotalMilliseconds);
    }

    private static void Bounded(long since, TimeSpan ttl)
    {
        if (Stopwatch.GetElapsedTime(since) > (5 * ttl) + TimeSpan.FromSeconds(30))
        {
            throw new TimeoutException($"no failover within {(5 * ttl) + TimeSpan.FromSeconds(30)}");
        }
    }
}
