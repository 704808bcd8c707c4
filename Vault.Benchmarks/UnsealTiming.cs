using System.Diagnostics;
using Grpc.Core;
using Vault.Benchmarks.Hosting;
using Vault.Protocol.V1;

namespace Vault.Benchmarks;

/// <summary>
/// <c>unseal [--times N]</c>: how long an operator waits for Unseal with the server's default
/// Argon2id parameters (64 MiB, t=3, p=2 unless configured otherwise). Starts a vault in its own
/// process, initialises it with no KDF override, then N times seals it and times one Unseal RPC,
/// end to end over plaintext HTTP/2 on loopback. Prints a markdown table.
/// </summary>
internal static class UnsealTiming
{
    private const string Passphrase = "benchmark passphrase, not a secret";

    public static bool Handles(IReadOnlyList<string> args) => args.Count > 0 && args[0] == "unseal";

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        var times = args is [_, "--times", var n] && int.TryParse(n, out var parsed) && parsed > 0 ? parsed : 5;
        var runDirectory = Directory.CreateTempSubdirectory("vault-bench-unseal-").FullName;
        try
        {
            var transport = new Transport(Transport.Plaintext, null);
            await using var server = await ChildServer.StartAsync(ServeCommand.Vault, ["--data-dir", runDirectory], CancellationToken.None);
            using var channel = transport.OpenChannel(server.Address);
            var system = new SystemService.SystemServiceClient(channel);
            var init = await system.InitAsync(new InitRequest { Passphrase = Passphrase });
            var root = new Metadata { { "authorization", $"Bearer {init.RootToken}" } };
            var status = await system.StatusAsync(new StatusRequest());
            var kdf = status.Kdf;
            var samples = new List<double>();
            for (var i = 0; i < times; i++)
            {
                if (!(await system.StatusAsync(new StatusRequest())).Sealed)
                {
                    await system.SealAsync(new SealRequest(), root);
                }
                var started = Stopwatch.GetTimestamp();
                await system.UnsealAsync(new UnsealRequest { Passphrase = Passphrase });
                samples.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                root = new Metadata { { "authorization", $"Bearer {init.RootToken}" } };
            }
            samples.Sort();
            Console.WriteLine($"Unseal, Argon2id m={kdf.MemoryKib} KiB t={kdf.Iterations} p={kdf.Parallelism} (the server's defaults), {times} times, ms per Unseal RPC:");
            Console.WriteLine();
            Console.WriteLine("| min | median | max | goal |");
            Console.WriteLine("|---:|---:|---:|---|");
            var max = samples[^1];
            Console.WriteLine($"| {samples[0]:0} | {samples[samples.Count / 2]:0} | {max:0} | < 1000 ms: {(max < 1000 ? "met" : "missed")} (max) |");
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
                // Best effort: a temp directory of this run only.
            }
        }
    }
}
