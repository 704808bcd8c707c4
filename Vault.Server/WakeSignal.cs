namespace Vault.Server;

/// <summary>
/// A background loop's sleep (the rotation scheduler's, the lease reaper's): it ends when someone
/// calls <see cref="Wake"/> or when the time has passed on the vault's clock. The clock's timer,
/// not the machine's, so a test that moves a fake clock past a due time or a TTL sees the loop run
/// then, instead of waiting out the real interval.
/// </summary>
public sealed class WakeSignal(TimeProvider clock) : IDisposable
{
    private readonly SemaphoreSlim _wake = new(0);

    /// <summary>Ends the current (or the next) wait at once.</summary>
    public void Wake()
    {
        if (_wake.CurrentCount == 0)
        {
            _wake.Release();
        }
    }

    /// <summary>Waits until <see cref="Wake"/> or until the clock reads <paramref name="until"/>.</summary>
    /// <remarks>
    /// The timer is armed for exactly the time left, and armed again if the clock moved between
    /// reading it and arming (a test's fake clock jumps; the system clock's timers are monotonic):
    /// otherwise a jump to <paramref name="until"/> in that gap would leave a timer due later, and
    /// the loop asleep past its due time.
    /// </remarks>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task WaitUntilAsync(DateTimeOffset until, CancellationToken cancellationToken)
    {
        while (true)
        {
            var now = clock.GetUtcNow();
            if (now >= until)
            {
                return;
            }
            using var timer = new CancellationTokenSource(until - now, clock);
            if (clock.GetUtcNow() != now)
            {
                continue;
            }
            using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
            try
            {
                await _wake.WaitAsync(either.Token);
                return;
            }
            catch (OperationCanceledException) when (timer.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
            }
        }
    }

    public void Dispose() => _wake.Dispose();
}
