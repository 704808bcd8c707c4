namespace Vault.Server;

/// <summary>
/// Work that ends things on time beside the leases: the lease reaper runs every registered pass
/// after its own, on its schedule (so ends survive restarts: the first pass after an unseal ends
/// what expired while the server was down).
/// </summary>
public interface IReaperPass
{
    Task ReapAsync(CancellationToken cancellationToken);
}
