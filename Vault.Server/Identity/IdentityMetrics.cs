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
    public IdentityMetrics(IMeterFactory meters, SecurityBarrier barrier, AccessRequests access)
    {
        ArgumentNullException.ThrowIfNull(meters);
        var meter = meters.Create(Telemetry.VaultMetrics.MeterName);
        meter.CreateObservableGauge("vault.access.requests", () => Requests(barrier, access), unit: "{request}",
            description: "Access requests pending approval, and in effect (active), by state.");
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

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
