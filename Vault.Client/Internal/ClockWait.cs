namespace Vault.Clocks;

/// <summary>
/// Sleeps on a <see cref="TimeProvider"/> (the server's scheduler, reaper, audit flusher and
/// rotation waits; the client's lease renewal and replacement), never on the machine's clock: a
/// test's fake clock decides when they end. A timer is armed for the time left as its clock reads
/// at arming, so a jump of the clock between reading the time left and arming would leave it due
/// late by the jump — with a fake clock, asleep until the next jump. Every such wait goes through
/// here: the timer is armed again when the clock moved while it was being armed (an architecture
/// test holds both assemblies to this). The server compiles this same file (linked).
/// </summary>
internal static class ClockWait
{
    // Arming a timer takes microseconds; a clock that moved further meanwhile jumped.
    private static readonly TimeSpan ArmingSlack = TimeSpan.FromMilliseconds(1);

    // A timer cannot be armed for more than about 49 days; a longer wait is armed in steps.
    private static readonly TimeSpan LongestArm = TimeSpan.FromDays(1);

    /// <summary>Waits until <paramref name="clock"/> reads <paramref name="until"/> (its time of day).</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static Task UntilAsync(this TimeProvider clock, DateTimeOffset until, CancellationToken cancellationToken) =>
        WaitAsync(clock, () => until - clock.GetUtcNow(), wake: null, cancellationToken);

    /// <summary>
    /// Waits until <paramref name="span"/> has passed on <paramref name="clock"/> since
    /// <paramref name="since"/> (its <see cref="TimeProvider.GetTimestamp"/>: elapsed time, which a
    /// clock set back does not lengthen).
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static Task ElapsedAsync(this TimeProvider clock, long since, TimeSpan span, CancellationToken cancellationToken) =>
        WaitAsync(clock, () => span - clock.GetElapsedTime(since), wake: null, cancellationToken);

    /// <summary>
    /// Waits until <paramref name="left"/> reads zero or less, or (when given) until
    /// <paramref name="wake"/> is released.
    /// </summary>
    internal static async Task WaitAsync(TimeProvider clock, Func<TimeSpan> left, SemaphoreSlim? wake, CancellationToken cancellationToken)
    {
        while (true)
        {
            var before = left();
            if (before <= TimeSpan.Zero)
            {
                return;
            }
            var armedFor = before < LongestArm ? before : LongestArm;
            using var timer = new CancellationTokenSource(armedFor, clock);
            if (before - left() > ArmingSlack)
            {
                continue; // the clock jumped while the timer was armed: it would be due late
            }
            using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
            try
            {
                if (wake is null)
                {
                    await Task.Delay(Timeout.InfiniteTimeSpan, either.Token).ConfigureAwait(false);
                }
                else
                {
                    await wake.WaitAsync(either.Token).ConfigureAwait(false);
                }
                return;
            }
            catch (OperationCanceledException) when (timer.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                // Due: look at the clock again (a time of day set back leaves time to wait).
            }
        }
    }
}
