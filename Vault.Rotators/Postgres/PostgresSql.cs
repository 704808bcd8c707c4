using System.Text;

namespace Vault.Rotators.Postgres;

/// <summary>Quoting for the few statements that cannot take bind parameters (<c>ALTER ROLE</c>, <c>CREATE ROLE</c>).</summary>
internal static class PostgresSql
{
    /// <summary>PostgreSQL truncates longer identifiers (NAMEDATALEN - 1 bytes), which would silently name another role.</summary>
    public const int MaxIdentifierBytes = 63;

    /// <summary>Why <paramref name="name"/> cannot be a role name, or null.</summary>
    public static string? RoleNameProblem(string name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return "must not be empty";
        }
        if (name.Contains('\0', StringComparison.Ordinal))
        {
            return "must not contain NUL";
        }
        if (Encoding.UTF8.GetByteCount(name) > MaxIdentifierBytes)
        {
            return $"must be at most {MaxIdentifierBytes} bytes (PostgreSQL would truncate it)";
        }
        return null;
    }

    /// <summary><c>"name"</c> with embedded double quotes doubled; always quoted, so case and keywords are kept.</summary>
    public static string QuoteIdentifier(string name)
    {
        if (name.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException("an identifier cannot contain NUL", nameof(name));
        }
        return "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    /// <summary>
    /// A string literal that means the same whatever <c>standard_conforming_strings</c> is: single
    /// quotes doubled, and a value with a backslash written as an escape string (<c>E'...'</c>) with
    /// the backslashes doubled.
    /// </summary>
    public static string QuoteLiteral(string value)
    {
        if (value.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException("a literal cannot contain NUL", nameof(value));
        }
        var body = value.Replace("'", "''", StringComparison.Ordinal);
        return value.Contains('\\', StringComparison.Ordinal)
            ? "E'" + body.Replace("\\", "\\\\", StringComparison.Ordinal) + "'"
            : "'" + body + "'";
    }
}
