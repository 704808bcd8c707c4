using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Vault.Server.Crypto;

namespace Vault.Server.Rotation;

/// <summary>
/// The daemon's clock: after each unseal it reconciles every target caught mid-rotation, then
/// sleeps until the earliest due rotation or drift check (or until a target changes), runs what is
/// due — at most <see cref="RotationOptions.MaxConcurrent"/> at once, never two runs of one target —
/// and plans again. Nothing runs while the vault is sealed (the passwords cannot be read), nor on a
/// standby node; a node that becomes active reconciles first, as after an unseal.
/// </summary>
public sealed class RotationScheduler(
    TargetRepository targets,
    RotationEngine engine,
    SecurityBarrier barrier,
    TimeProvider clock,
    IOptions<RotationOptions> options,
    ILogger<RotationScheduler> logger,
    Cluster.NodeRole role) : BackgroundService
{
    private static readonly TimeSpan MaxSleep = TimeSpan.FromSeconds(30);
    private readonly WakeSignal _wake = new(clock);
    private static readonly TimeSpan Cooldown = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan FailureCooldown = TimeSpan.FromMinutes(1);
    private readonly ConcurrentDictionary<string, bool> _running = new(StringComparer.Ordinal);
    // A key runs at most once a second (once a minute after a run that threw): a run that could not
    // move its due time (the target was busy, the store failed) must not turn into a tight loop.
    // Counted from when the run began, not from when it ended: a clock that reaches the next
    // due time while a run is still ending (its audit write in flight, or a test's fake clock moved
    // as soon as the failure was stored) must not find that due time inside the cooldown, where the
    // scheduler would sleep on a timer the clock may never reach.
    private readonly ConcurrentDictionary<string, long> _notBefore = new(StringComparer.Ordinal);
    private SemaphoreSlim? _slots;
    private volatile bool _reconciled;

    /// <summary>Plans again now (a target changed, a run ended, the vault was unsealed).</summary>
    public void Wake() => _wake.Wake();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _slots = new SemaphoreSlim(options.Value.MaxConcurrent);
        targets.Changed += Wake;
        barrier.SealStateChanged += OnSealChanged;
        role.ActiveChanged += OnActiveChanged;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var planned = clock.GetUtcNow();
                var wakeAt = planned + MaxSleep;
                try
                {
                    if (!barrier.IsSealed && role.IsActive)
                    {
                        wakeAt = Plan(stoppingToken);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // Sealed between the check and a read, or a damaged record: try again shortly.
                    RotationLog.SchedulerFailed(logger, ex);
                    wakeAt = planned + TimeSpan.FromSeconds(5);
                }
                try
                {
                    var earliest = planned + TimeSpan.FromMilliseconds(10);
                    await _wake.WaitUntilAsync(wakeAt < earliest ? earliest : wakeAt, stoppingToken);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
            }
        }
        finally
        {
            targets.Changed -= Wake;
            barrier.SealStateChanged -= OnSealChanged;
            role.ActiveChanged -= OnActiveChanged;
        }
    }

    /// <returns>When to plan again: the earliest due time, drift check or cooldown end that is still ahead.</returns>
    private DateTimeOffset Plan(CancellationToken stoppingToken)
    {
        var all = targets.List();
        if (!_reconciled)
        {
            var interrupted = all.Where(t => t.Record.Pending is not null).ToList();
            if (interrupted.Count > 0)
            {
                RotationLog.ReconcilingAtStartup(logger, interrupted.Count);
            }
            foreach (var (name, _) in interrupted)
            {
                Launch(name, () => engine.RotateAsync(name, RotationTriggers.Startup, stoppingToken), stoppingToken);
            }
            _reconciled = true;
        }
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var next = now + (long)MaxSleep.TotalMilliseconds;
        foreach (var (name, record) in all)
        {
            if (!record.Paused && !record.NeedsAttention && record.NextDueAtUnixMs is { } due)
            {
                if (due <= now)
                {
                    var trigger = record.DueTrigger ?? RotationTriggers.Scheduled;
                    Launch(name, () => engine.RotateAsync(name, trigger, stoppingToken), stoppingToken);
                }
                else
                {
                    next = Math.Min(next, due);
                }
            }
            if (record.NextDriftCheckAtUnixMs is { } check)
            {
                if (check <= now)
                {
                    Launch("drift:" + name, () => engine.CheckDriftAsync(name, stoppingToken), stoppingToken);
                }
                else
                {
                    next = Math.Min(next, check);
                }
            }
        }
        foreach (var (key, until) in _notBefore)
        {
            if (until > now)
            {
                next = Math.Min(next, until);
            }
            else
            {
                _notBefore.TryRemove(key, out _);
            }
        }
        return DateTimeOffset.FromUnixTimeMilliseconds(next);
    }

    private void Launch(string key, Func<Task> work, CancellationToken stoppingToken)
    {
        if (_notBefore.TryGetValue(key, out var notBefore) && notBefore > clock.GetUtcNow().ToUnixTimeMilliseconds())
        {
            return;
        }
        if (!_running.TryAdd(key, true))
        {
            return;
        }
        _ = Task.Run(async () =>
        {
            var failed = false;
            var started = clock.GetUtcNow();
            try
            {
                await _slots!.WaitAsync(stoppingToken);
                // From when the run begins, not when it was queued: a run that waited for a slot
                // longer than the cooldown must not be able to start again at once.
                started = clock.GetUtcNow();
                try
                {
                    await work();
                }
                finally
                {
                    _slots.Release();
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
            }
            catch (Exception ex)
            {
                // The engine records rotation failures itself; this is a store or barrier failure
                // (e.g. sealed mid-run) or a damaged record. The target stays due: try it again,
                // but not every second.
                failed = true;
                RotationLog.SchedulerFailed(logger, ex);
            }
            finally
            {
                _notBefore[key] = (started + (failed ? FailureCooldown : Cooldown)).ToUnixTimeMilliseconds();
                _running.TryRemove(key, out _);
                Wake();
            }
        }, CancellationToken.None);
    }

    private void OnActiveChanged(bool active)
    {
        // Rotations the previous active node left half done are this node's to finish first.
        _reconciled = false;
        Wake();
    }

    private void OnSealChanged(bool isSealed)
    {
        if (isSealed)
        {
            _reconciled = false;
        }
        Wake();
    }

    public override void Dispose()
    {
        _wake.Dispose();
        _slots?.Dispose();
        base.Dispose();
    }
}
