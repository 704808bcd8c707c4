using System.Globalization;

namespace Vault.Cli.Input;

/// <summary>
/// Parsing of <c>target add</c>'s structured options: the daily window, required character
/// classes and connection options. Only the syntax is checked here; what the values mean (a valid
/// cron expression, a long enough password) is the server's to judge, so it names the field.
/// </summary>
internal static class TargetInput
{
    /// <summary>The character classes <c>--require</c> accepts, in the order they are printed.</summary>
    public static readonly string[] Classes = ["lower", "upper", "digit", "symbol"];

    /// <summary>Parses <c>HH:MM-HH:MM</c> (UTC; the window may wrap midnight).</summary>
    /// <exception cref="UsageException">Not two 24-hour times joined by '-'.</exception>
    public static (string Start, string End) Window(string text, string optionName)
    {
        var parts = text.Trim().Split('-');
        if (parts.Length != 2 || !IsTime(parts[0]) || !IsTime(parts[1]))
        {
            throw new UsageException($"{optionName}: '{text}' is not a daily window (use HH:MM-HH:MM in UTC, e.g. 01:00-05:00)");
        }
        return (parts[0], parts[1]);
    }

    /// <summary>Parses a comma-separated list of character classes (<c>lower,upper,digit,symbol</c>, or <c>none</c>).</summary>
    /// <returns>The classes named; empty for <c>none</c>.</returns>
    /// <exception cref="UsageException">An unknown class, or <c>none</c> together with a class.</exception>
    public static HashSet<string> RequiredClasses(string text, string optionName)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts is ["none"])
        {
            return result;
        }
        foreach (var part in parts)
        {
            var name = part.ToLowerInvariant();
            if (!Classes.Contains(name))
            {
                throw new UsageException($"{optionName}: '{part}' is not a character class (use {string.Join(", ", Classes)}, or none)");
            }
            result.Add(name);
        }
        return result.Count > 0 ? result : throw new UsageException($"{optionName}: name at least one character class (or none)");
    }

    /// <summary>Parses <c>KEY=VALUE</c> connection options. Unlike <c>kv put</c> data, <c>@FILE</c> is not read: options are never secrets.</summary>
    /// <exception cref="UsageException">An option without '=' or with an empty key, or a key given twice.</exception>
    public static Dictionary<string, string> Options(IEnumerable<string> pairs, string optionName)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new UsageException($"{optionName}: '{pair}' is not KEY=VALUE");
            }
            if (!result.TryAdd(pair[..eq], pair[(eq + 1)..]))
            {
                throw new UsageException($"{optionName}: '{pair[..eq]}' is given twice");
            }
        }
        return result;
    }

    /// <summary>Parses a jitter: a duration, or <c>0</c> for none.</summary>
    /// <exception cref="UsageException">Neither 0 nor a duration.</exception>
    public static TimeSpan Jitter(string text, string optionName) =>
        text.Trim() is "0" or "0s" ? TimeSpan.Zero : DurationParser.Parse(text, optionName);

    private static bool IsTime(string text) =>
        text.Length == 5 && TimeOnly.TryParseExact(text, "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out _);
}
