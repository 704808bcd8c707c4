using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Vault.Server.Crypto;

namespace Vault.Server.Leases;

/// <summary>
/// Ends leases on time: when the next lease falls due, and at least every
/// <see cref="LeaseOptions.ReaperInterval"/>, while unsealed (and at once after an unseal, which
/// revokes what expired while the server was down) it revokes expired
/// leases and leases whose token died, and retries revocations that are due. It runs beside the
/// API, never in front of it, and keeps the vault's clock (<see cref="WakeSignal"/>). Other areas'
/// <see cref="IReaperPass"/>es (access grants that end) run after it, on the same schedule.
/// </summary>
public sealed class LeaseReaper(LeaseLifecycle lifecycle, IEnumerable<IReaperPass> passes, SecurityBarrier barrier, TimeProvider clock, IOptions<LeaseOptions> options, ILogger<LeaseReaper> logger, Cluster.NodeRole role) : BackgroundService
{
    private readonly WakeSignal _wake = new(clock);

    private int _asked;

    /// <summary>Runs a pass now (an unseal, a promotion).</summary>
    public void Wake()
    {
        Interlocked.Exchange(ref _asked, 1);
        _wake.Wake();
    }

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
                    while (true)
                    {
                        var until = NextPass(passStarted);
                        await _wake.WaitUntilAsync(until, stoppingToken);
                        if (Interlocked.Exchange(ref _asked, 0) == 1 || clock.GetUtcNow() >= until)
                        {
                            break;
                        }
                        // A lease was noted due sooner than this wait: plan it again.
                    }
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

    /// <summary>How long passes are apart at least when a lease falls due sooner than the interval.</summary>
    internal static readonly TimeSpan MinimumGap = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// The interval after this pass began, or sooner when a lease falls due before that (so a lease
    /// ends when it expires, not up to an interval later), but never sooner than
    /// <see cref="MinimumGap"/> after this pass began.
    /// </summary>
    private DateTimeOffset NextPass(DateTimeOffset passStarted)
    {
        var latest = passStarted + options.Value.ReaperInterval;
        return !barrier.IsSealed && role.IsActive ? lifecycle.PlanWake(latest, passStarted + MinimumGap, _wake.Wake) : latest;
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
