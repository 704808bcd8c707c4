namespace Vault.Benchmarks.Hosting;

/// <summary>
/// Two nodes of one vault on a PostgreSQL database (<c>Vault:NodeId</c>): the first started alone,
/// so it takes the term, initialised and seeded as a <see cref="SeededVault"/>; the second joins
/// once that is done, unseals, and is a standby that serves the same reads from its own image.
/// kv-get-active and kv-get-standby read the same secrets with the same token, one on each.
/// </summary>
internal sealed class NodePair : IAsyncDisposable
{
    private NodePair(SeededVault active, BenchmarkVault standby)
    {
        Active = active;
        Standby = standby;
    }

    public SeededVault Active { get; }

    public BenchmarkVault Standby { get; }

    public static async Task<NodePair> StartAsync(string runDirectory, Transport transport, string storageConnectionFile, int secrets, string value, TimeSpan ttl, CancellationToken cancellationToken)
    {
        var active = await SeededVault.StartAsync(runDirectory, transport, secrets, value, cancellationToken, storageConnectionFile: storageConnectionFile, node: ("bench-a", ttl, null));
        try
        {
            var standby = await BenchmarkVault.StartAsync(runDirectory, transport, cancellationToken, storageConnectionFile: storageConnectionFile, node: ("bench-b", ttl, active.Vault.RootToken));
            await standby.Server.SettleAsync(cancellationToken);
            return new NodePair(active, standby);
        }
        catch
        {
            await active.DisposeAsync();
            throw;
        }
    }

    /// <summary>The standby's view of the same seeded secrets and token.</summary>
    public SeededVault StandbyReads => Active.On(Standby);

    public async ValueTask DisposeAsync()
    {
        await Standby.DisposeAsync();
        await Active.DisposeAsync();
    }
}
