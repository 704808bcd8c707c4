namespace Vault.Server.Auth;

/// <summary>
/// A policy path pattern: segments separated by '/', where a '+' segment matches exactly one
/// segment and a trailing '*' matches any suffix (including none). Everything else is literal.
/// </summary>
public sealed class PathGlob
{
    private readonly string[] _segments;
    private readonly string? _prefixTail;

    private PathGlob(string pattern, string[] segments, string? prefixTail)
    {
        Pattern = pattern;
        _segments = segments;
        _prefixTail = prefixTail;
    }

    public string Pattern { get; }

    /// <exception cref="ValidationException">The pattern is empty, has '*' other than at its end, or a control character.</exception>
    public static PathGlob Parse(string pattern, string field)
    {
        if (string.IsNullOrWhiteSpace(pattern))
        {
            throw new ValidationException(field, "must not be empty");
        }
        if (pattern.Length > 512 || pattern.Any(char.IsControl))
        {
            throw new ValidationException(field, "must be at most 512 printable characters");
        }
        var star = pattern.IndexOf('*', StringComparison.Ordinal);
        if (star >= 0 && star != pattern.Length - 1)
        {
            throw new ValidationException(field, "'*' is allowed only at the end of a path");
        }
        string? tail = null;
        var body = pattern;
        if (star >= 0)
        {
            var lastSlash = pattern.LastIndexOf('/');
            tail = pattern[(lastSlash + 1)..^1];
            body = lastSlash < 0 ? "" : pattern[..lastSlash];
        }
        var segments = body.Length == 0 ? [] : body.Split('/');
        if (segments.Any(s => s.Length == 0))
        {
            throw new ValidationException(field, "has an empty segment");
        }
        if (segments.Any(s => s.Contains('+', StringComparison.Ordinal) && s != "+") || (tail?.Contains('+', StringComparison.Ordinal) ?? false))
        {
            throw new ValidationException(field, "'+' must be a whole segment");
        }
        return new PathGlob(pattern, segments, tail);
    }

    public bool Matches(string path)
    {
        var parts = path.Split('/');
        if (_prefixTail is null)
        {
            return parts.Length == _segments.Length && SegmentsMatch(parts);
        }
        // "a/+/b*": the fixed segments match, and what follows them starts with "b".
        if (parts.Length <= _segments.Length || !SegmentsMatch(parts))
        {
            return false;
        }
        return string.Join('/', parts.Skip(_segments.Length)).StartsWith(_prefixTail, StringComparison.Ordinal);
    }

    private bool SegmentsMatch(string[] parts)
    {
        for (var i = 0; i < _segments.Length; i++)
        {
            if (_segments[i] == "+" ? parts[i].Length == 0 : _segments[i] != parts[i])
            {
                return false;
            }
        }
        return true;
    }
}
