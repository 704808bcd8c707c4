using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;

namespace Vault.Server.Leases;

/// <summary>
/// The check-out gauge on the vault's meter (<see cref="Telemetry.VaultMetrics.MeterName"/>):
/// callers waiting for an account, by set. A hosted service only so that it is made at start-up;
/// check-out sets rotate through the engine, which records through <see cref="Telemetry.VaultMetrics"/>,
/// so the two cannot be one class.
/// </summary>
public sealed class LeaseMetrics : IHostedService
{
    public LeaseMetrics(IMeterFactory meters, CheckoutSets sets)
    {
        ArgumentNullException.ThrowIfNull(meters);
        ArgumentNullException.ThrowIfNull(sets);
        meters.Create(Telemetry.VaultMetrics.MeterName).CreateObservableGauge("vault.checkout.waiters",
            () => sets.Waiters().Select(w => new Measurement<int>(w.Waiting, new KeyValuePair<string, object?>("vault.lease.owner", w.Set))),
            unit: "{caller}", description: "Callers waiting for an account of a check-out set, by set (sets used since the start).");
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
