using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Cronos;

namespace Vault.Server.Rotation;

/// <summary>
/// When a target rotates: every <see cref="Interval"/> or at each <see cref="Cron"/> occurrence,
/// moved into the daily UTC window when one is set, plus a jitter that is fixed per target (a hash
/// of its name), so a thousand targets sharing a schedule spread over the jitter range instead
/// of firing in the same second, and a target's own runs stay evenly spaced.
/// </summary>
public sealed class RotationSchedule
{
    public static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan MaxInterval = TimeSpan.FromDays(3660);
    public static readonly TimeSpan DefaultJitterCap = TimeSpan.FromMinutes(5);

    /// <summary>How long past due a scheduled target counts as overdue (metrics, the credential report): longer than a busy scheduler's delay, shorter than any schedule worth having.</summary>
    public static readonly TimeSpan OverdueAfter = TimeSpan.FromMinutes(15);

    private readonly CronExpression? _cron;

    private RotationSchedule(TimeSpan? interval, string? cron, CronExpression? parsed, TimeOnly? windowStart, TimeOnly? windowEnd, TimeSpan maxJitter)
    {
        Interval = interval;
        Cron = cron;
        _cron = parsed;
        WindowStart = windowStart;
        WindowEnd = windowEnd;
        MaxJitter = maxJitter;
    }

    public TimeSpan? Interval { get; }
    public string? Cron { get; }
    public TimeOnly? WindowStart { get; }
    public TimeOnly? WindowEnd { get; }
    public TimeSpan MaxJitter { get; }

    /// <summary>Neither interval nor cron: the target rotates only when asked.</summary>
    public bool IsManualOnly => Interval is null && _cron is null;

    /// <summary>Checks and builds a schedule; <paramref name="field"/> prefixes the field named in errors, and a cron expression is judged (does it occur, how often) from <paramref name="now"/> on the vault's clock.</summary>
    /// <exception cref="ValidationException">A field is invalid; nothing is built.</exception>
    public static RotationSchedule Create(DateTimeOffset now, TimeSpan? interval, string? cron, string? windowStart, string? windowEnd, TimeSpan? maxJitter, string field = "target.schedule")
    {
        cron = string.IsNullOrWhiteSpace(cron) ? null : cron.Trim();
        if (interval is not null && cron is not null)
        {
            throw new ValidationException(field, "give an interval or a cron expression, not both");
        }
        if (interval is { } i && (i < MinInterval || i > MaxInterval))
        {
            throw new ValidationException($"{field}.interval", $"must be between {MinInterval.TotalSeconds:F0} s and {MaxInterval.TotalDays:F0} days");
        }
        CronExpression? parsed = null;
        if (cron is not null)
        {
            if (cron.Length > 256)
            {
                throw new ValidationException($"{field}.cron", "is longer than 256 characters");
            }
            var fields = cron.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
            if (fields is not (5 or 6))
            {
                throw new ValidationException($"{field}.cron", $"needs 5 fields (minute hour day month weekday) or 6 with seconds first, not {fields}");
            }
            try
            {
                parsed = CronExpression.Parse(cron, fields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
            }
            catch (CronFormatException ex)
            {
                throw new ValidationException($"{field}.cron", $"is not a valid cron expression: {ex.Message}");
            }
            if (parsed.GetNextOccurrence(now.UtcDateTime, TimeZoneInfo.Utc) is null)
            {
                throw new ValidationException($"{field}.cron", "never occurs");
            }
        }
        var start = ParseTime(windowStart, $"{field}.window_start");
        var end = ParseTime(windowEnd, $"{field}.window_end");
        if (start.HasValue != end.HasValue)
        {
            throw new ValidationException(start.HasValue ? $"{field}.window_end" : $"{field}.window_start", "a window needs both a start and an end");
        }
        if (start.HasValue && start == end)
        {
            throw new ValidationException($"{field}.window_end", "must differ from window_start");
        }
        if (start.HasValue && interval is null && parsed is null)
        {
            throw new ValidationException($"{field}.window_start", "a window needs an interval or a cron expression");
        }
        var period = interval ?? CronPeriod(parsed, now);
        TimeSpan jitter;
        if (maxJitter is { } j)
        {
            if (j < TimeSpan.Zero)
            {
                throw new ValidationException($"{field}.max_jitter", "must not be negative");
            }
            if (period is { } p && j >= p)
            {
                throw new ValidationException($"{field}.max_jitter", "must be shorter than the time between rotations");
            }
            jitter = j;
        }
        else
        {
            jitter = period is { } p ? TimeSpan.FromTicks(Math.Min(p.Ticks / 10, DefaultJitterCap.Ticks)) : TimeSpan.Zero;
        }
        return new RotationSchedule(interval, cron, parsed, start, end, jitter);
    }

    /// <summary>
    /// Rebuilds a schedule that was validated when it was stored, without validating it again:
    /// checks that depend on the clock (a cron's spacing) must not start failing a finished
    /// rotation later.
    /// </summary>
    public static RotationSchedule FromStored(TimeSpan? interval, string? cron, string? windowStart, string? windowEnd, TimeSpan maxJitter)
    {
        var parsed = string.IsNullOrWhiteSpace(cron) ? null : CronExpression.Parse(cron.Trim(), cron.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries).Length == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
        TimeOnly? start = windowStart is null ? null : TimeOnly.ParseExact(windowStart, "HH:mm", CultureInfo.InvariantCulture);
        TimeOnly? end = windowEnd is null ? null : TimeOnly.ParseExact(windowEnd, "HH:mm", CultureInfo.InvariantCulture);
        return new RotationSchedule(interval, parsed is null ? null : cron!.Trim(), parsed, start, end, maxJitter);
    }

    /// <summary>The next due time for <paramref name="targetName"/> after a rotation (or registration) at <paramref name="after"/>; null when manual only.</summary>
    public DateTimeOffset? NextDue(string targetName, DateTimeOffset after)
    {
        DateTimeOffset? basis = Interval is { } interval
            ? after + interval
            : _cron?.GetNextOccurrence(after.UtcDateTime, TimeZoneInfo.Utc) is { } next ? new DateTimeOffset(next, TimeSpan.Zero) : null;
        if (basis is not { } due)
        {
            return null;
        }
        var jitter = Jitter(targetName);
        var jittered = due + jitter;
        if (WindowStart is { } start && WindowEnd is { } end && !InWindow(TimeOnly.FromDateTime(jittered.UtcDateTime), start, end))
        {
            // Move to the window's next opening; keep the jitter inside the window.
            var windowLength = end > start ? end - start : TimeSpan.FromDays(1) - (start - end);
            var opening = new DateTimeOffset(jittered.UtcDateTime.Date + start.ToTimeSpan(), TimeSpan.Zero);
            if (opening < jittered)
            {
                opening = opening.AddDays(1);
            }
            return opening + TimeSpan.FromTicks(jitter.Ticks % Math.Max(1, windowLength.Ticks));
        }
        return jittered;
    }

    /// <summary>The fixed jitter of one target: a hash of its name scaled into [0, <see cref="MaxJitter"/>].</summary>
    public TimeSpan Jitter(string targetName)
    {
        if (MaxJitter <= TimeSpan.Zero)
        {
            return TimeSpan.Zero;
        }
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(targetName), hash);
        var fraction = BinaryPrimitives.ReadUInt64LittleEndian(hash) / (double)ulong.MaxValue;
        return TimeSpan.FromTicks((long)(MaxJitter.Ticks * fraction));
    }

    public static string FormatTime(TimeOnly time) => time.ToString("HH:mm", CultureInfo.InvariantCulture);

    private static bool InWindow(TimeOnly time, TimeOnly start, TimeOnly end) =>
        start < end ? time >= start && time < end : time >= start || time < end;

    /// <summary>The shortest gap between occurrences over the coming year (at most 1000 of them): jitter must stay below it whenever it runs.</summary>
    private static TimeSpan? CronPeriod(CronExpression? cron, DateTimeOffset now)
    {
        if (cron is null)
        {
            return null;
        }
        var from = now.UtcDateTime;
        var occurrences = cron.GetOccurrences(from, from.AddYears(1), TimeZoneInfo.Utc).Take(1000).ToList();
        TimeSpan? shortest = null;
        for (var i = 1; i < occurrences.Count; i++)
        {
            var gap = occurrences[i] - occurrences[i - 1];
            if (shortest is null || gap < shortest)
            {
                shortest = gap;
            }
        }
        return shortest;
    }

    private static TimeOnly? ParseTime(string? value, string field)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        if (!TimeOnly.TryParseExact(value.Trim(), ["HH:mm", "H:mm"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var time))
        {
            throw new ValidationException(field, $"'{value}' is not a time like 01:30 (24-hour, UTC)");
        }
        return time;
    }
}
