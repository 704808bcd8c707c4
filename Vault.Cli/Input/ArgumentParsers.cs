using System.Globalization;

namespace Vault.Cli.Input;

/// <summary>Parsing of the free-form arguments: <c>KEY=VALUE</c> pairs and version lists.</summary>
internal static class ArgumentParsers
{
    /// <summary>
    /// Reads <c>KEY=VALUE</c> pairs. A value of <c>@FILE</c> is read from FILE, so secrets need not
    /// appear on the command line (where other users can see them in the process list).
    /// </summary>
    /// <exception cref="UsageException">A pair has no '=' or an empty key, a key repeats, or a file cannot be read.</exception>
    public static Dictionary<string, string> KeyValuePairs(IEnumerable<string> pairs, string what = "data")
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var position = 0;
        foreach (var pair in pairs)
        {
            position++;
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                // The argument is not echoed: a value typed without its key is likely a secret.
                throw new UsageException($"{what} argument {position} is not KEY=VALUE ({(eq == 0 ? "empty key" : "no '='")})");
            }
            var key = pair[..eq];
            var value = pair[(eq + 1)..];
            if (value.StartsWith('@') && value.Length > 1)
            {
                value = ReadFile(value[1..], $"value of '{key}'");
            }
            if (!result.TryAdd(key, value))
            {
                throw new UsageException($"key '{key}' is given twice");
            }
        }
        return result;
    }

    /// <summary>Parses <c>1,2,3</c>.</summary>
    /// <exception cref="UsageException">Not a comma-separated list of positive integers.</exception>
    public static List<ulong> Versions(string? text, string optionName)
    {
        var result = new List<ulong>();
        if (string.IsNullOrWhiteSpace(text))
        {
            return result;
        }
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!ulong.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var version) || version == 0)
            {
                throw new UsageException($"{optionName}: '{part}' is not a version number (use e.g. 1,2,3)");
            }
            result.Add(version);
        }
        return result;
    }

    /// <summary>
    /// Parses a point in time: an ISO 8601 time (<c>2026-01-01T12:00:00Z</c>; without an offset it
    /// is UTC) or a duration back from <paramref name="now"/> (<c>10m</c>, <c>2h</c>, <c>7d</c>).
    /// </summary>
    /// <exception cref="UsageException">Neither a time nor a duration.</exception>
    public static DateTimeOffset PointInTime(string text, string optionName, DateTimeOffset now)
    {
        if (DateTimeOffset.TryParse(text.Trim(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
        {
            return time;
        }
        try
        {
            return now - DurationParser.Parse(text, optionName);
        }
        catch (UsageException)
        {
            throw new UsageException($"{optionName}: '{text}' is neither a time (e.g. 2026-01-01T12:00:00Z) nor a duration ago (e.g. 10m, 2h, 7d)");
        }
    }

    /// <exception cref="UsageException">The file cannot be read.</exception>
    public static string ReadFile(string path, string what)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new UsageException($"cannot read {what} from '{path}': {ex.Message}");
        }
    }
}
