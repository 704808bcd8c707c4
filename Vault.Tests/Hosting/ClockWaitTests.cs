using System.Reflection;
using Microsoft.Extensions.Time.Testing;
using Vault.Clocks;
using Vault.Client;
using Vault.Server;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Hosting;

/// <summary>
/// The server's sleeps on its clock end when the clock says so, even when it jumps while a timer
/// is being armed (a test's fake clock moved by another thread: the audit flusher once slept past
/// its window that way, and the read's entry was never anchored). Every such sleep goes through
/// <see cref="ClockWait"/>.
/// </summary>
public sealed class ClockWaitTests
{
    /// <summary>A fake clock that jumps by <see cref="Jump"/> once, just before it arms a timer: between a reader's look at the time and its timer.</summary>
    private sealed class JumpingClock(TimeSpan jump) : TimeProvider
    {
        private int _jumped;

        public FakeTimeProvider Inner { get; } = new(new DateTimeOffset(2026, 12, 7, 9, 0, 0, TimeSpan.Zero));

        public TimeSpan Jump { get; } = jump;

        public override DateTimeOffset GetUtcNow() => Inner.GetUtcNow();

        public override long GetTimestamp() => Inner.GetTimestamp();

        public override long TimestampFrequency => Inner.TimestampFrequency;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            if (Interlocked.Exchange(ref _jumped, 1) == 0)
            {
                Inner.Advance(Jump);
            }
            return Inner.CreateTimer(callback, state, dueTime, period);
        }
    }

    public static TheoryData<string> Waits => new() { "until", "elapsed", "wake-signal" };

    private static Task Wait(string kind, JumpingClock clock, TimeSpan span)
    {
        var start = clock.GetUtcNow();
        var since = clock.GetTimestamp();
        return kind switch
        {
            "until" => clock.UntilAsync(start + span, CancellationToken.None),
            "elapsed" => clock.ElapsedAsync(since, span, CancellationToken.None),
            _ => new WakeSignal(clock).WaitUntilAsync(start + span, CancellationToken.None),
        };
    }

    [Theory]
    [MemberData(nameof(Waits))]
    public async Task AJumpPastTheDueTimeWhileArming_EndsTheWait(string kind)
    {
        var clock = new JumpingClock(TimeSpan.FromMilliseconds(10));

        var wait = Wait(kind, clock, TimeSpan.FromMilliseconds(10));

        var ended = await Task.WhenAny(wait, Task.Delay(TimeSpan.FromSeconds(10)));
        Assert.True(ended == wait, $"the {kind} wait did not end when the clock reached its due time (it armed a timer due later)");
        await wait;
    }

    [Theory]
    [MemberData(nameof(Waits))]
    public async Task AJumpShortOfTheDueTimeWhileArming_EndsTheWaitWhenTheClockGetsThere(string kind)
    {
        var clock = new JumpingClock(TimeSpan.FromMilliseconds(6));

        var wait = Wait(kind, clock, TimeSpan.FromMilliseconds(10));
        await Task.Delay(200); // real time for a wrong wait to end early
        Assert.False(wait.IsCompleted, $"the {kind} wait ended before its due time");
        clock.Inner.Advance(TimeSpan.FromMilliseconds(4));

        var ended = await Task.WhenAny(wait, Task.Delay(TimeSpan.FromSeconds(10)));
        Assert.True(ended == wait, $"the {kind} wait did not end when the clock reached its due time (it armed a timer due later)");
        await wait;
    }

    public static TheoryData<string> Assemblies => new() { "Vault.Server", "Vault.Client" };

    [Theory]
    [MemberData(nameof(Assemblies))]
    public void OnlyClockWait_ArmsATimerOnAnInjectedClock(string name)
    {
        var assembly = name == "Vault.Server" ? typeof(WakeSignal).Assembly : typeof(VaultClient).Assembly;
        var clockWait = assembly.GetType("Vault.Clocks.ClockWait") ?? throw new Xunit.Sdk.XunitException($"{name} has no Vault.Clocks.ClockWait");
        var arming = new MethodBase[]
        {
            typeof(Task).GetMethod(nameof(Task.Delay), [typeof(TimeSpan), typeof(TimeProvider)])!,
            typeof(Task).GetMethod(nameof(Task.Delay), [typeof(TimeSpan), typeof(TimeProvider), typeof(CancellationToken)])!,
            typeof(CancellationTokenSource).GetConstructor([typeof(TimeSpan), typeof(TimeProvider)])!,
            typeof(TimeProvider).GetMethod(nameof(TimeProvider.CreateTimer))!,
        };
        var armers = arming
            .SelectMany(m => IlScan.Callers(assembly, m))
            .Where(m => IlScan.Outermost(m.DeclaringType!) != clockWait)
            .Select(m => $"{IlScan.Outermost(m.DeclaringType!).FullName}")
            .Distinct()
            .ToList();

        Assert.True(armers.Count == 0, $"a timer armed on an injected clock outside ClockWait in {name} (a jump of a fake clock while arming leaves it due late): {string.Join(", ", armers)}");
        // The scan would pass vacuously if it could not see a constructor call.
        Assert.Contains(IlScan.Callers(assembly, arming[2]), m => IlScan.Outermost(m.DeclaringType!) == clockWait);
    }
}
