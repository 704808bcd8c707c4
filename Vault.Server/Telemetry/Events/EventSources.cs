using Microsoft.Extensions.Hosting;
using Vault.Server.Audit;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Telemetry.Events;

/// <summary>
/// Publishes the events of the vault's own state, which the areas already announce: seal and
/// unseal (the barrier), the audit log failing and recovering, the store refusing writes and taking
/// them again. The domain services publish theirs (rotations, leases, access requests) themselves.
/// </summary>
public sealed class EventSources(SecurityEvents events, SecurityBarrier barrier, AuditLog audit, IVaultStore store) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        barrier.SealStateChanged += OnSealStateChanged;
        audit.FailingChanged += OnAuditFailingChanged;
        store.FailingChanged += OnStoreFailingChanged;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        barrier.SealStateChanged -= OnSealStateChanged;
        audit.FailingChanged -= OnAuditFailingChanged;
        store.FailingChanged -= OnStoreFailingChanged;
        return Task.CompletedTask;
    }

    private void OnSealStateChanged(bool isSealed) => events.Publish(isSealed ? SecurityEventTypes.Sealed : SecurityEventTypes.Unsealed);

    private void OnAuditFailingChanged(bool failing)
    {
        if (failing)
        {
            events.Publish(SecurityEventTypes.AuditFailed, ("reason", audit.Failure));
        }
        else
        {
            events.Publish(SecurityEventTypes.AuditRecovered);
        }
    }

    private void OnStoreFailingChanged(bool failing)
    {
        if (failing)
        {
            events.Publish(SecurityEventTypes.StoreFailed, ("reason", store.Failure));
        }
        else
        {
            events.Publish(SecurityEventTypes.StoreRecovered);
        }
    }
}
