using System.Diagnostics;
using Grpc.Core;
using Vault.Benchmarks.Load;
using Vault.Protocol.V1;

namespace Vault.Benchmarks.Hosting;

/// <summary>
/// A vault for the read scenarios (kv-get, kv-get-scale, token-lookup): seeded once with
/// <see cref="Paths"/>, then only read. Its application token holds one policy,
/// <c>read</c> on <c>kv/bench/get/*</c>; token-lookup uses the same token (a self-lookup needs
/// no rule, and a policy must have one).
/// </summary>
internal sealed class SeededVault : IAsyncDisposable
{
    public const string PathPrefix = "bench/get/";

    // Seeding is not measured: parallel writers let the vault's group commit batch the fsyncs.
    private const int SeedWriters = 32;

    private SeededVault(BenchmarkVault vault, string[] paths, Metadata headers)
    {
        Vault = vault;
        Paths = paths;
        Headers = headers;
    }

    public BenchmarkVault Vault { get; }

    public IReadOnlyList<string> Paths { get; }

    /// <summary>The application token's metadata.</summary>
    public Metadata Headers { get; }

    /// <param name="metricsListen">Where the vault's metrics listener listens; null for none.</param>
    public static async Task<SeededVault> StartAsync(string runDirectory, Transport transport, int secrets, string value, CancellationToken cancellationToken, string? metricsListen = null, string? storageConnectionFile = null,
        (string Id, TimeSpan Ttl, string? RootToken)? node = null)
    {
        var vault = await BenchmarkVault.StartAsync(runDirectory, transport, cancellationToken, metricsListen, storageConnectionFile, node);
        try
        {
            string[] paths = [.. Enumerable.Range(0, secrets).Select(i => $"{PathPrefix}{i:D6}")];
            await Console.Error.WriteAsync($"seeding {secrets:N0} secrets of {value.Length:N0} bytes ({transport.Name}) ... ");
            var started = Stopwatch.GetTimestamp();
            await SeedAsync(vault, paths, value, cancellationToken);
            var seeded = Stopwatch.GetElapsedTime(started);
            var settled = await vault.Server.SettleAsync(cancellationToken);
            await Console.Error.WriteLineAsync($"{seeded.TotalSeconds:0.0} s, then idle after {settled.TotalSeconds:0.0} s");
            var headers = await vault.CreateTokenAsync("bench-kv-get", [BenchmarkVault.Rule($"kv/{PathPrefix}*", "read")], cancellationToken);
            return new SeededVault(vault, paths, headers);
        }
        catch
        {
            await vault.DisposeAsync();
            throw;
        }
    }

    public ValueTask DisposeAsync() => _owned ? Vault.DisposeAsync() : ValueTask.CompletedTask;

    private bool _owned = true;

    /// <summary>The same paths and token, read on <paramref name="node"/> (another node of the same vault; not owned).</summary>
    public SeededVault On(BenchmarkVault node) => new(node, [.. Paths], Headers) { _owned = false };

    private static async Task SeedAsync(BenchmarkVault vault, string[] paths, string value, CancellationToken cancellationToken)
    {
        using var channel = vault.Transport.OpenChannel(vault.Address);
        var kv = new KvService.KvServiceClient(channel);
        var next = -1;
        var writers = Enumerable.Range(0, SeedWriters).Select(_ => Task.Run(async () =>
        {
            for (var i = Interlocked.Increment(ref next); i < paths.Length; i = Interlocked.Increment(ref next))
            {
                await kv.PutAsync(SecretPayload.PutRequest(paths[i], value), vault.RootHeaders, cancellationToken: cancellationToken);
            }
        }, cancellationToken));
        await Task.WhenAll(writers);
    }
}
