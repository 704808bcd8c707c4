using Vault.Server.Rotation;

namespace Vault.Tests.Rotation;

public sealed class RotationScheduleTests
{
    private static readonly DateTimeOffset Noon = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Jitter_IsTheSameForATargetEveryTime_AndSpreadsATargetsThousandNeighbours()
    {
        var schedule = RotationSchedule.Create(DateTimeOffset.UtcNow, TimeSpan.FromDays(1), null, null, null, TimeSpan.FromMinutes(5));
        Assert.Equal(schedule.Jitter("db-orders"), schedule.Jitter("db-orders"));
        var dues = Enumerable.Range(0, 1000).Select(i => schedule.NextDue($"db-{i}", Noon)!.Value).ToList();
        Assert.All(dues, d => Assert.InRange(d, Noon.AddDays(1), Noon.AddDays(1).AddMinutes(5)));
        // 1000 targets over 300 seconds: no second holds more than a handful.
        var busiest = dues.GroupBy(d => d.ToUnixTimeSeconds()).Max(g => g.Count());
        Assert.True(busiest <= 12, $"{busiest} targets fire in the same second");
    }

    [Fact]
    public void DefaultJitter_IsATenthOfTheInterval_CappedAtFiveMinutes()
    {
        Assert.Equal(TimeSpan.FromSeconds(6), RotationSchedule.Create(DateTimeOffset.UtcNow, TimeSpan.FromMinutes(1), null, null, null, null).MaxJitter);
        Assert.Equal(TimeSpan.FromMinutes(5), RotationSchedule.Create(DateTimeOffset.UtcNow, TimeSpan.FromDays(30), null, null, null, null).MaxJitter);
    }

    [Fact]
    public void Cron_NextDue_IsTheNextOccurrencePlusTheTargetsJitter()
    {
        var schedule = RotationSchedule.Create(DateTimeOffset.UtcNow, null, "0 3 * * *", null, null, TimeSpan.Zero);
        Assert.Equal(new DateTimeOffset(2026, 11, 27, 3, 0, 0, TimeSpan.Zero), schedule.NextDue("x", Noon));
        var withSeconds = RotationSchedule.Create(DateTimeOffset.UtcNow, null, "*/10 * * * * *", null, null, TimeSpan.Zero);
        Assert.Equal(Noon.AddSeconds(10), withSeconds.NextDue("x", Noon));
    }

    [Fact]
    public void Window_MovesADueTimeOutsideItToTheNextOpening()
    {
        var schedule = RotationSchedule.Create(DateTimeOffset.UtcNow, TimeSpan.FromHours(1), null, "01:00", "05:00", TimeSpan.Zero);
        Assert.Equal(new DateTimeOffset(2026, 11, 27, 1, 0, 0, TimeSpan.Zero), schedule.NextDue("x", Noon));
        var inside = new DateTimeOffset(2026, 11, 27, 2, 0, 0, TimeSpan.Zero);
        Assert.Equal(inside.AddHours(1), schedule.NextDue("x", inside));
        // A window across midnight.
        var night = RotationSchedule.Create(DateTimeOffset.UtcNow, TimeSpan.FromHours(1), null, "22:00", "02:00", TimeSpan.Zero);
        Assert.Equal(new DateTimeOffset(2026, 11, 26, 22, 0, 0, TimeSpan.Zero), night.NextDue("x", Noon));
        Assert.Equal(new DateTimeOffset(2026, 11, 27, 0, 30, 0, TimeSpan.Zero), night.NextDue("x", new DateTimeOffset(2026, 11, 26, 23, 30, 0, TimeSpan.Zero)));
    }

    [Fact]
    public void NoIntervalNorCron_IsManualOnly()
    {
        var schedule = RotationSchedule.Create(DateTimeOffset.UtcNow, null, null, null, null, null);
        Assert.True(schedule.IsManualOnly);
        Assert.Null(schedule.NextDue("x", Noon));
    }

    [Theory]
    [InlineData("* * *", "target.schedule.cron")]
    [InlineData("0 0 30 2 *", "target.schedule.cron")]
    [InlineData("not a cron", "target.schedule.cron")]
    public void Create_WithABadCron_NamesTheField(string cron, string field)
    {
        var ex = Assert.Throws<Vault.Server.ValidationException>(() => RotationSchedule.Create(DateTimeOffset.UtcNow, null, cron, null, null, null));
        Assert.StartsWith(field + ":", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_WithJitterLongerThanTheInterval_IsRefused()
    {
        var ex = Assert.Throws<Vault.Server.ValidationException>(() => RotationSchedule.Create(DateTimeOffset.UtcNow, TimeSpan.FromMinutes(1), null, null, null, TimeSpan.FromMinutes(2)));
        Assert.StartsWith("target.schedule.max_jitter:", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_WithAnIrregularCron_ChecksJitterAgainstItsShortestGap()
    {
        // Weekdays at midnight: gaps of 1 day and (over the weekend) 3 days.
        var ex = Assert.Throws<Vault.Server.ValidationException>(() => RotationSchedule.Create(DateTimeOffset.UtcNow, null, "0 0 * * 1-5", null, null, TimeSpan.FromDays(2)));
        Assert.StartsWith("target.schedule.max_jitter:", ex.Message, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromMinutes(5), RotationSchedule.Create(DateTimeOffset.UtcNow, null, "0 0 * * 1-5", null, null, null).MaxJitter);
        // Every 10 minutes on the hour's first half only: the shortest gap (10 min) bounds the default.
        Assert.Equal(TimeSpan.FromMinutes(1), RotationSchedule.Create(DateTimeOffset.UtcNow, null, "0,10,20 * * * *", null, null, null).MaxJitter);
    }

    [Fact]
    public void Window_KeepsAJitteredDueTimeInsideTheWindow()
    {
        var schedule = RotationSchedule.Create(DateTimeOffset.UtcNow, TimeSpan.FromHours(6), null, "01:00", "02:00", TimeSpan.FromMinutes(30));
        for (var i = 0; i < 200; i++)
        {
            var due = schedule.NextDue($"t{i}", new DateTimeOffset(2026, 11, 26, 19, 50, 0, TimeSpan.Zero))!.Value;
            Assert.InRange(due.TimeOfDay, TimeSpan.FromHours(1), TimeSpan.FromHours(2));
        }
    }
}
