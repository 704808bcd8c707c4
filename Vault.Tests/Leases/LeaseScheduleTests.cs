using Vault.Server.Leases;

namespace Vault.Tests.Leases;

/// <summary>
/// The reaper's schedule (<see cref="LeaseSchedule"/>) is never late: a lease is taken no later than
/// its record as saved needs, whatever order saves, commits, failed units, builds, invalidations and
/// reaper passes come in; only the reaper, on a read it can trust (every note of the lease settled,
/// none after the read), moves a time later or drops a lease that is gone.
/// </summary>
public sealed class LeaseScheduleTests
{
    private static LeaseRecord Active(long expiresAt, string accessor = "a1") => new() { State = LeaseStates.Active, ExpiresAtUnixMs = expiresAt, TokenAccessor = accessor };

    private static List<string> Due(LeaseSchedule schedule, long now) => [.. schedule.TakeDue(now).Select(d => d.Id)];

    /// <summary>A save as LeaseStore makes it: noted in its unit, settled once the unit committed.</summary>
    private static void Saved(LeaseSchedule schedule, string id, LeaseRecord lease)
    {
        schedule.Note(id, lease);
        schedule.Settled([id]);
    }

    private static LeaseSchedule Loaded()
    {
        var schedule = new LeaseSchedule();
        schedule.Load([], LeaseSchedule.Earliest);
        return schedule;
    }

    [Fact]
    public void TheReaper_WakesForTheNextLeaseDue_NotBeforeItsEarliest_AndIsCalledOnceForALeaseNotedDueSooner()
    {
        var schedule = Loaded();
        var calls = 0;
        schedule.DueSooner = () => calls++;
        Saved(schedule, "l1", Active(3_000));

        // The next lease is due before the interval ends: wake then; nothing is due sooner yet.
        Assert.Equal(3_000, schedule.PlanWake(latest: 10_000, earliest: 1_250));
        Saved(schedule, "l2", Active(4_000));
        Assert.Equal(0, calls);

        // A lease due before the planned time wakes the reaper once, to plan again.
        Saved(schedule, "l3", Active(2_000));
        Saved(schedule, "l4", Active(1_500));
        Assert.Equal(1, calls);
        Assert.Equal(1_500, schedule.PlanWake(latest: 10_000, earliest: 1_250));

        // Due before the earliest the reaper may wake: it wakes at its earliest, and is not called.
        Saved(schedule, "l5", Active(100));
        Assert.Equal(2, calls);
        Assert.Equal(1_250, schedule.PlanWake(latest: 10_000, earliest: 1_250));
        Saved(schedule, "l6", Active(50));
        Assert.Equal(2, calls);

        // A delete (nothing to end) and a lease still being created (ended only after its creation
        // timeout) do not wake the reaper.
        var quiet = Loaded();
        var quietCalls = 0;
        quiet.DueSooner = () => quietCalls++;
        quiet.CreatingGraceMs = 60_000;
        Saved(quiet, "q1", Active(3_000));
        Assert.Equal(3_000, quiet.PlanWake(latest: 10_000, earliest: 1_250));
        quiet.NoteGone("q1");
        quiet.Settled(["q1"]);
        Saved(quiet, "q2", new LeaseRecord { State = LeaseStates.Creating, IssuedAtUnixMs = 1_000, TokenAccessor = "a1" });
        Assert.Equal(0, quietCalls);
        Assert.Equal(["q1"], Due(quiet, 60_999));
        Assert.Equal(["q2"], Due(quiet, 61_000));

        // Nothing due before the interval ends: wake at its end.
        var empty = Loaded();
        Assert.Equal(10_000, empty.PlanWake(latest: 10_000, earliest: 1_250));
    }

    [Fact]
    public void ALease_IsTakenAtItsExpiry_NotBefore_AndOnce()
    {
        var schedule = Loaded();
        Saved(schedule, "l1", Active(1_000));

        Assert.Empty(Due(schedule, 999));
        Assert.Equal(["l1"], Due(schedule, 1_000));
        // Taken: not again until the reaper says when.
        Assert.Empty(Due(schedule, 5_000));
    }

    [Fact]
    public void ARenewal_KeepsTheEarlierTime_TheReaperMovesItLater_FromTheCommittedRecord()
    {
        var schedule = Loaded();
        Saved(schedule, "l1", Active(1_000));
        Saved(schedule, "l1", Active(9_000));

        var taken = schedule.TakeDue(1_000);
        Assert.Equal("l1", Assert.Single(taken).Id);
        schedule.Reschedule("l1", taken[0].Version, Active(9_000), 9_000);

        Assert.Empty(Due(schedule, 8_999));
        Assert.Equal(["l1"], Due(schedule, 9_000));
    }

    [Fact]
    public void ASaveNotYetCommitted_IsNotOverruledByAReadOfTheRecordBeforeIt()
    {
        var schedule = Loaded();
        Saved(schedule, "l1", Active(86_400_000));
        // Marked revoking, due now, in a unit whose commit reads do not see yet.
        schedule.Note("l1", new LeaseRecord { State = LeaseStates.Revoking, NextAttemptAtUnixMs = 1_000, TokenAccessor = "a1" });
        var taken = schedule.TakeDue(1_000);
        Assert.Equal("l1", Assert.Single(taken).Id);
        // The reaper reads the lease as it was: active, a day from expiry. Not trusted yet.
        schedule.Reschedule("l1", taken[0].Version, Active(86_400_000), 86_400_000);

        Assert.Equal(["l1"], Due(schedule, 1_000));
    }

    [Fact]
    public void AUnitThatFailed_LeavesTheTimeToTheRecordAsItIs()
    {
        var schedule = Loaded();
        Saved(schedule, "l1", Active(5_000));
        // A renewal whose unit failed: noted, then settled, and the store still holds the old record.
        schedule.Note("l1", Active(1_000));
        schedule.Settled(["l1"]);
        var taken = schedule.TakeDue(1_000);
        schedule.Reschedule("l1", Assert.Single(taken).Version, Active(5_000), 5_000);

        Assert.Empty(Due(schedule, 4_999));
        Assert.Equal(["l1"], Due(schedule, 5_000));
    }

    [Fact]
    public void ASaveWhileTheReaperLooked_IsNotOverwrittenByALaterTime()
    {
        var schedule = Loaded();
        Saved(schedule, "l1", Active(1_000));
        var taken = schedule.TakeDue(1_000);
        Saved(schedule, "l1", new LeaseRecord { State = LeaseStates.Revoking, NextAttemptAtUnixMs = 2_000, TokenAccessor = "a1" });
        schedule.Reschedule("l1", taken[0].Version, Active(50_000), 50_000);

        Assert.Equal(["l1"], Due(schedule, 2_000));
    }

    [Fact]
    public void ALeaseDeleted_IsDroppedOnceTheDeleteIsSeen_NotBefore_AndNotIfSavedAgain()
    {
        var schedule = Loaded();
        Saved(schedule, "gone", Active(9_000, "a1"));
        Saved(schedule, "back", Active(9_000, "a2"));
        Saved(schedule, "early", Active(9_000, "a3"));
        schedule.NoteGone("gone");
        schedule.Settled(["gone"]);
        schedule.NoteGone("back");
        schedule.Settled(["back"]);
        // A delete still in its unit: the read finds the lease gone before the commit says so.
        var taken = schedule.TakeDue(0).ToDictionary(t => t.Id, t => t.Version);
        Assert.Equal(["back", "gone"], taken.Keys.Order(StringComparer.Ordinal));
        schedule.Note("early", Active(9_000, "a3"));
        Saved(schedule, "back", Active(3_000, "a2"));

        schedule.Reschedule("gone", taken["gone"], null, LeaseSchedule.Never);
        schedule.Reschedule("back", taken["back"], null, LeaseSchedule.Never);

        Assert.Equal(["a2", "a3"], schedule.Accessors().Order(StringComparer.Ordinal));
        Assert.Equal(["back"], Due(schedule, 3_000));
    }

    [Fact]
    public void ABuild_KeepsWhatWasNotedWhileItRead_AndAnInvalidatedScheduleIsBuiltAgain()
    {
        var schedule = new LeaseSchedule();
        Assert.False(schedule.Loaded);
        // Noted while the store was being read: the read saw the lease as it was before (later).
        schedule.Note("l1", Active(1_000));
        schedule.Load([new("l1", Active(7_000)), new("l2", Active(2_000, "a2"))], LeaseSchedule.Earliest);

        Assert.True(schedule.Loaded);
        Assert.Equal(["l1"], Due(schedule, 1_000));
        Assert.Equal(["l2"], Due(schedule, 2_000));
        Assert.Equal(["a1", "a2"], schedule.Accessors().Order(StringComparer.Ordinal));

        schedule.Invalidate();
        Assert.False(schedule.Loaded);
        Assert.Empty(schedule.Accessors());
    }

    [Fact]
    public void ABuildOverlappedByAnInvalidation_IsThrownAway()
    {
        var schedule = new LeaseSchedule();
        IEnumerable<KeyValuePair<string, LeaseRecord>> Read()
        {
            yield return new("l1", Active(7_000));
            // Sealed (or stepped down) while the store was read; what was noted before is gone.
            schedule.Invalidate();
            yield return new("l2", Active(8_000));
        }

        schedule.Load(Read(), LeaseSchedule.Earliest);

        Assert.False(schedule.Loaded);
        Assert.Empty(schedule.Accessors());
    }

    [Fact]
    public void RevokedAndIrrevocableLeases_AreNeverDue_ButStillCountAsTheirTokensLeases()
    {
        var schedule = Loaded();
        Saved(schedule, "r", new LeaseRecord { State = LeaseStates.Revoked, TokenAccessor = "a1" });
        Saved(schedule, "i", new LeaseRecord { State = LeaseStates.Irrevocable, TokenAccessor = "a1" });

        Assert.Empty(Due(schedule, long.MaxValue - 1));
        Assert.Equal(["i", "r"], schedule.HeldBy("a1").Select(h => h.Id).Order(StringComparer.Ordinal));
    }
}
