using System.Text;

namespace Vault.Rotators.MySql;

/// <summary>
/// String literals for the statements that cannot take parameters (<c>ALTER USER</c>, <c>CREATE USER</c>),
/// written for the session's actual SQL mode.
/// </summary>
/// <remarks>
/// Single-quoted literals are used throughout because <c>ANSI_QUOTES</c> turns double-quoted ones
/// into identifiers. Whether a backslash escapes depends on <c>NO_BACKSLASH_ESCAPES</c>: with it, a
/// backslash is an ordinary character and doubling it would change the value; without it, an
/// undoubled backslash would escape the next character. MySqlConnector's client-side parameter
/// substitution does not follow the server's mode (it needs its own <c>NoBackslashEscapes</c>
/// option; checked against MariaDB 10.11 with MySqlConnector 2.6), so the mode is read from the
/// session instead of trusting parameters.
/// </remarks>
internal sealed class MySqlQuoting(bool noBackslashEscapes)
{
    public const string SqlModeQuery = "SELECT @@SESSION.sql_mode";

    public bool NoBackslashEscapes { get; } = noBackslashEscapes;

    public static MySqlQuoting ForSqlMode(string? sqlMode) =>
        new((sqlMode ?? "").Split(',').Any(mode => mode.Trim().Equals("NO_BACKSLASH_ESCAPES", StringComparison.OrdinalIgnoreCase)));

    /// <exception cref="ArgumentException">The value contains NUL.</exception>
    public string Literal(string value)
    {
        if (value.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException("a MySQL literal written by the rotator cannot contain NUL", nameof(value));
        }
        var builder = new StringBuilder(value.Length + 2).Append('\'');
        foreach (var c in value)
        {
            switch (c)
            {
                case '\'':
                    builder.Append("''");
                    break;
                case '\\' when !NoBackslashEscapes:
                    builder.Append(@"\\");
                    break;
                default:
                    builder.Append(c);
                    break;
            }
        }
        return builder.Append('\'').ToString();
    }
}
