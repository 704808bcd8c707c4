using System.Globalization;

namespace Vault.Cli.Input;

/// <summary>Parses durations such as <c>90s</c>, <c>30m</c>, <c>1h30m</c>, <c>7d</c> or plain seconds (<c>3600</c>).</summary>
internal static class DurationParser
{
    /// <exception cref="UsageException">Not a positive duration.</exception>
    public static TimeSpan Parse(string text, string optionName)
    {
        var s = text.Trim();
        if (long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var plainSeconds) && plainSeconds > 0)
        {
            return TimeSpan.FromSeconds(plainSeconds);
        }
        var total = TimeSpan.Zero;
        var i = 0;
        while (i < s.Length)
        {
            var start = i;
            while (i < s.Length && char.IsAsciiDigit(s[i]))
            {
                i++;
            }
            var unitStart = i;
            while (i < s.Length && char.IsAsciiLetterLower(s[i]))
            {
                i++;
            }
            if (start == unitStart || unitStart == i || !long.TryParse(s.AsSpan(start, unitStart - start), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                throw Invalid(text, optionName);
            }
            total += s[unitStart..i] switch
            {
                "s" => TimeSpan.FromSeconds(n),
                "m" => TimeSpan.FromMinutes(n),
                "h" => TimeSpan.FromHours(n),
                "d" => TimeSpan.FromDays(n),
                _ => throw Invalid(text, optionName),
            };
        }
        return total > TimeSpan.Zero ? total : throw Invalid(text, optionName);
    }

    /// <summary>The <c>--default-ttl</c> / <c>--max-ttl</c> pair of a role or set, either one optional.</summary>
    /// <exception cref="UsageException">A value does not parse, or the default is longer than the max.</exception>
    public static (Google.Protobuf.WellKnownTypes.Duration? Default, Google.Protobuf.WellKnownTypes.Duration? Max) TtlPair(string? defaultText, string? maxText)
    {
        var defaultValue = defaultText is null ? (TimeSpan?)null : Parse(defaultText, "--default-ttl");
        var maxValue = maxText is null ? (TimeSpan?)null : Parse(maxText, "--max-ttl");
        if (defaultValue > maxValue)
        {
            throw new UsageException($"--default-ttl {Format(defaultValue.Value)} is longer than --max-ttl {Format(maxValue.Value)}");
        }
        return (defaultValue is { } d ? Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(d) : null,
            maxValue is { } m ? Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(m) : null);
    }

    /// <summary>Formats a duration the way <see cref="Parse"/> reads it, e.g. <c>1h30m</c>.</summary>
    public static string Format(TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            return "0s";
        }
        var parts = new List<string>(4);
        if (value.Days > 0)
        {
            parts.Add($"{value.Days}d");
        }
        if (value.Hours > 0)
        {
            parts.Add($"{value.Hours}h");
        }
        if (value.Minutes > 0)
        {
            parts.Add($"{value.Minutes}m");
        }
        if (value.Seconds > 0)
        {
            parts.Add($"{value.Seconds}s");
        }
        return parts.Count == 0 ? "0s" : string.Concat(parts);
    }

    private static UsageException Invalid(string text, string optionName) =>
        new($"{optionName}: '{text}' is not a duration (use e.g. 90s, 30m, 1h30m, 7d)");
}
