using Vault.Clocks;

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
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task WaitUntilAsync(DateTimeOffset until, CancellationToken cancellationToken) =>
        ClockWait.WaitAsync(clock, () => until - clock.GetUtcNow(), _wake, cancellationToken);

    public void Dispose() => _wake.Dispose();
}
