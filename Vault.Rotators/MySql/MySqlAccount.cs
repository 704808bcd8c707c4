namespace Vault.Rotators.MySql;

/// <summary>A MySQL/MariaDB account: the user name one logs in with and the host pattern it is defined for.</summary>
/// <remarks>
/// Written <c>user</c> (host from the <c>account_host</c> option, default <c>%</c>) or
/// <c>user@host</c>, split at the <em>last</em> <c>@</c>: a user name that itself contains <c>@</c>
/// must be written with its host (<c>a@b@%</c> is user <c>a@b</c> at host <c>%</c>).
/// </remarks>
internal readonly record struct MySqlAccount(string User, string Host)
{
    public const string DefaultHost = "%";

    /// <summary>The account, or the reason <paramref name="account"/> is not one.</summary>
    public static (MySqlAccount Account, string? Problem) Parse(string account, string defaultHost)
    {
        if (string.IsNullOrEmpty(account))
        {
            return (default, "must not be empty");
        }
        if (account.Any(char.IsControl))
        {
            return (default, "must not contain control characters");
        }
        var at = account.LastIndexOf('@');
        var parsed = at < 0 ? new MySqlAccount(account, defaultHost) : new MySqlAccount(account[..at], account[(at + 1)..]);
        if (parsed.User.Length == 0)
        {
            return (default, "has an empty user name (anonymous accounts are not supported)");
        }
        if (parsed.Host.Length == 0)
        {
            return (default, "has an empty host after '@'");
        }
        return (parsed, null);
    }

    /// <summary><c>'user'@'host'</c> as literals valid under the session's SQL mode.</summary>
    public string Quote(MySqlQuoting quoting) => $"{quoting.Literal(User)}@{quoting.Literal(Host)}";

    public override string ToString() => $"{User}@{Host}";
}
