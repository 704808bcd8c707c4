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

    /// <summary>Waits until <see cref="Wake"/> or until <paramref name="timeout"/> has passed on the clock.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var timer = new CancellationTokenSource(timeout, clock);
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
        try
        {
            await _wake.WaitAsync(either.Token);
        }
        catch (OperationCanceledException) when (timer.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
        }
    }

    public void Dispose() => _wake.Dispose();
}
