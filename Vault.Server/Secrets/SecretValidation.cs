using System.Text;

namespace Vault.Server.Secrets;

/// <summary>Rules for KV paths and values. Every failure names the field.</summary>
public static class SecretValidation
{
    public const int MaxPathLength = 512;
    public const int MaxKeyLength = 256;
    public const int MaxEntries = 1024;
    public const int MaxVersionsLimit = 1000;

    /// <summary>Validates a secret path: non-empty segments, no <c>.</c>/<c>..</c>, no control characters.</summary>
    public static string Path(string? path, string field = "path")
    {
        if (string.IsNullOrEmpty(path))
        {
            throw new ValidationException(field, "must not be empty");
        }
        if (Encoding.UTF8.GetByteCount(path) > MaxPathLength)
        {
            throw new ValidationException(field, $"is longer than {MaxPathLength} bytes");
        }
        if (path.Any(char.IsControl))
        {
            throw new ValidationException(field, "contains a control character");
        }
        if (path.StartsWith('/') || path.EndsWith('/'))
        {
            throw new ValidationException(field, "must not start or end with '/'");
        }
        foreach (var segment in path.Split('/'))
        {
            if (segment.Length == 0)
            {
                throw new ValidationException(field, "has an empty segment ('//')");
            }
            if (segment is "." or "..")
            {
                throw new ValidationException(field, "must not contain '.' or '..' segments");
            }
            if (segment.Trim().Length != segment.Length)
            {
                throw new ValidationException(field, "has a segment with leading or trailing white space");
            }
        }
        return path;
    }

    /// <summary>A list prefix: empty (top level) or a path, with or without a trailing '/'.</summary>
    public static string Prefix(string? prefix)
    {
        if (string.IsNullOrEmpty(prefix))
        {
            return "";
        }
        var trimmed = prefix.EndsWith('/') ? prefix[..^1] : prefix;
        return Path(trimmed, "prefix") + "/";
    }

    public static void Data(IReadOnlyDictionary<string, string> data, int maxValueBytes)
    {
        if (data.Count > MaxEntries)
        {
            throw new ValidationException("data", $"has more than {MaxEntries} keys");
        }
        long total = 0;
        foreach (var (key, value) in data)
        {
            if (key.Length == 0)
            {
                throw new ValidationException("data", "has an empty key");
            }
            if (key.Length > MaxKeyLength)
            {
                throw new ValidationException("data", $"has a key longer than {MaxKeyLength} characters");
            }
            if (key.Any(char.IsControl))
            {
                throw new ValidationException("data", "has a key with a control character");
            }
            total += Encoding.UTF8.GetByteCount(key) + Encoding.UTF8.GetByteCount(value);
            if (total > maxValueBytes)
            {
                throw new ValidationException("data", $"is larger than the limit of {maxValueBytes} bytes");
            }
        }
    }

    public static void CustomMetadata(IReadOnlyDictionary<string, string> metadata)
    {
        if (metadata.Count > 64)
        {
            throw new ValidationException("custom_metadata", "has more than 64 keys");
        }
        foreach (var (key, value) in metadata)
        {
            if (key.Length is 0 or > 128 || key.Any(char.IsControl))
            {
                throw new ValidationException("custom_metadata", "keys must be 1 to 128 printable characters");
            }
            if (value.Length > 512 || value.Any(char.IsControl))
            {
                throw new ValidationException("custom_metadata", "values must be at most 512 printable characters");
            }
        }
    }

    public static int MaxVersions(uint value)
    {
        if (value is 0 or > MaxVersionsLimit)
        {
            throw new ValidationException("max_versions", $"must be between 1 and {MaxVersionsLimit}");
        }
        return (int)value;
    }
}
