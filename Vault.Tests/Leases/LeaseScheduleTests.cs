using Vault.Server.Leases;

namespace Vault.Tests.Leases;

/// <summary>
/// The reaper's schedule (<see cref="LeaseSchedule"/>) is never late: a lease is taken no later than
/// its record as saved needs, whatever order saves, failed saves, builds and reaper passes come in;
/// only the reaper, on the record as committed, moves a time later; a lease gone is dropped.
/// </summary>
public sealed class LeaseScheduleTests
{
    private static LeaseRecord Active(long expiresAt, string accessor = "a1") => new() { State = LeaseStates.Active, ExpiresAtUnixMs = expiresAt, TokenAccessor = accessor };

    private static List<string> Due(LeaseSchedule schedule, long now) => [.. schedule.TakeDue(now).Select(d => d.Id)];

    [Fact]
    public void ALease_IsTakenAtItsExpiry_NotBefore_AndOnce()
    {
        var schedule = new LeaseSchedule();
        schedule.Load([], LeaseSchedule.Earliest);
        schedule.Note("l1", Active(1_000));

        Assert.Empty(Due(schedule, 999));
        Assert.Equal(["l1"], Due(schedule, 1_000));
        // Taken: not again until the reaper says when.
        Assert.Empty(Due(schedule, 5_000));
    }

    [Fact]
    public void ARenewal_KeepsTheEarlierTime_TheReaperMovesItLater_FromTheCommittedRecord()
    {
        var schedule = new LeaseSchedule();
        schedule.Load([], LeaseSchedule.Earliest);
        schedule.Note("l1", Active(1_000));
        // A renewal's save (its unit might not commit): still looked at by the old expiry.
        schedule.Note("l1", Active(9_000));

        var taken = schedule.TakeDue(1_000);
        Assert.Equal("l1", Assert.Single(taken).Id);
        // The reaper read the committed record (renewed): its time is now the new expiry.
        schedule.Reschedule("l1", taken[0].Version, Active(9_000), 9_000);

        Assert.Empty(Due(schedule, 8_999));
        Assert.Equal(["l1"], Due(schedule, 9_000));
    }

    [Fact]
    public void ASaveWhileTheReaperLooked_IsNotOverwrittenByALaterTime()
    {
        var schedule = new LeaseSchedule();
        schedule.Load([], LeaseSchedule.Earliest);
        schedule.Note("l1", Active(1_000));
        var taken = schedule.TakeDue(1_000);
        // Saved meanwhile as revoking, retry due at 2,000; the reaper's read was from before.
        schedule.Note("l1", new LeaseRecord { State = LeaseStates.Revoking, NextAttemptAtUnixMs = 2_000, TokenAccessor = "a1" });
        schedule.Reschedule("l1", taken[0].Version, Active(50_000), 50_000);

        Assert.Equal(["l1"], Due(schedule, 2_000));
    }

    [Fact]
    public void ALeaseGone_IsDropped_UnlessSavedAgainMeanwhile()
    {
        var schedule = new LeaseSchedule();
        schedule.Load([], LeaseSchedule.Earliest);
        schedule.Note("gone", Active(1_000, "a1"));
        schedule.Note("back", Active(1_000, "a2"));
        var taken = schedule.TakeDue(1_000).ToDictionary(t => t.Id, t => t.Version);
        schedule.Note("back", Active(3_000, "a2"));

        schedule.Reschedule("gone", taken["gone"], null, LeaseSchedule.Never);
        schedule.Reschedule("back", taken["back"], null, LeaseSchedule.Never);

        Assert.Equal(["a2"], schedule.Accessors());
        Assert.Equal(["back"], schedule.HeldBy("a2").Select(h => h.Id));
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
    public void RevokedAndIrrevocableLeases_AreNeverDue_ButStillCountAsTheirTokensLeases()
    {
        var schedule = new LeaseSchedule();
        schedule.Load([], LeaseSchedule.Earliest);
        schedule.Note("r", new LeaseRecord { State = LeaseStates.Irrevocable, TokenAccessor = "a1" });

        Assert.Empty(Due(schedule, long.MaxValue - 1));
        Assert.Equal(["r"], schedule.HeldBy("a1").Select(h => h.Id));
    }
}
