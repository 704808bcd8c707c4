using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;
using Vault.Server.Crypto;

namespace Vault.Server.Identity;

/// <summary>
/// The people and approvals gauges, on the vault's meter (<see cref="Telemetry.VaultMetrics.MeterName"/>):
/// access requests pending and grants in effect. A hosted service only so that it is made at
/// start-up; it depends on <see cref="AccessRequests"/>, which records break-glass uses through
/// <see cref="Telemetry.VaultMetrics"/>, so the two cannot be one class.
/// </summary>
public sealed class IdentityMetrics : IHostedService
{
    public IdentityMetrics(IMeterFactory meters, SecurityBarrier barrier, AccessRequests access, Storage.IVaultStore store, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(meters);
        var meter = meters.Create(Telemetry.VaultMetrics.MeterName);
        meter.CreateObservableGauge("vault.access.requests", () => Requests(barrier, access), unit: "{request}",
            description: "Access requests pending approval, and in effect (active), by state.");
        meter.CreateObservableGauge("vault.userpass.locked_out", () => LockedOut(barrier, store, clock), unit: "{user}",
            description: "Userpass users locked out after failed logins, now.");
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>A count for a gauge, not a decision: records are read without checking their seals (every login checks them).</summary>
    private static int LockedOut(SecurityBarrier barrier, Storage.IVaultStore store, TimeProvider clock)
    {
        if (barrier.IsSealed)
        {
            return 0;
        }
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        return store.List<UserpassUserRecord>(Storage.Collections.UserpassUsers, "").Count(u => u.Value.LockedUntilUnixMs > now);
    }

    private static IEnumerable<Measurement<int>> Requests(SecurityBarrier barrier, AccessRequests access)
    {
        if (barrier.IsSealed)
        {
            return [];
        }
        try
        {
            return
            [
                new(access.ListRequests(AccessRequestStates.Pending).Count, new KeyValuePair<string, object?>("state", AccessRequestStates.Pending)),
                new(access.ListRequests(AccessRequestStates.Active).Count, new KeyValuePair<string, object?>("state", AccessRequestStates.Active)),
            ];
        }
        catch (VaultException)
        {
            return [];
        }
    }
}
