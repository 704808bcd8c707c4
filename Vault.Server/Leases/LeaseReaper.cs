using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Vault.Server.Crypto;

namespace Vault.Server.Leases;

/// <summary>
/// Ends leases on time: every <see cref="LeaseOptions.ReaperInterval"/> while unsealed (and at once
/// after an unseal, which revokes what expired while the server was down) it revokes expired
/// leases and leases whose token died, and retries revocations that are due. It runs beside the
/// API, never in front of it, and keeps the vault's clock (<see cref="WakeSignal"/>). Other areas'
/// <see cref="IReaperPass"/>es (access grants that end) run after it, on the same schedule.
/// </summary>
public sealed class LeaseReaper(LeaseLifecycle lifecycle, IEnumerable<IReaperPass> passes, SecurityBarrier barrier, TimeProvider clock, IOptions<LeaseOptions> options, ILogger<LeaseReaper> logger, Cluster.NodeRole role) : BackgroundService
{
    private readonly WakeSignal _wake = new(clock);

    public void Wake() => _wake.Wake();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        barrier.SealStateChanged += OnSealChanged;
        role.ActiveChanged += OnActiveChanged;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var passStarted = clock.GetUtcNow();
                // Only the active node reaps: it alone writes, and a standby's image may lag a renewal.
                if (!barrier.IsSealed && role.IsActive)
                {
                    foreach (var pass in passes.Prepend(lifecycle))
                    {
                        try
                        {
                            await pass.ReapAsync(stoppingToken);
                        }
                        catch (Exception ex) when (ex is not OperationCanceledException)
                        {
                            // Sealed mid-pass or a store failure: the next pass tries again.
                            LeaseLog.ReaperFailed(logger, ex);
                        }
                    }
                }
                try
                {
                    await _wake.WaitUntilAsync(passStarted + options.Value.ReaperInterval, stoppingToken);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
            }
        }
        finally
        {
            barrier.SealStateChanged -= OnSealChanged;
            role.ActiveChanged -= OnActiveChanged;
        }
    }

    private void OnActiveChanged(bool active)
    {
        // Another node wrote leases meanwhile: the schedule is built afresh from the store.
        lifecycle.ScheduleStale();
        if (active)
        {
            Wake();
        }
    }

    private void OnSealChanged(bool isSealed)
    {
        lifecycle.ScheduleStale();
        if (!isSealed)
        {
            Wake();
        }
    }

    public override void Dispose()
    {
        _wake.Dispose();
        base.Dispose();
    }
}
