namespace Vault.Rotators.Internal;

/// <summary>Checks every rotator applies the same way: host, port, options and password shape.</summary>
internal static class TargetChecks
{
    /// <summary>Host, port and option names; the rotator checks the account and option values itself.</summary>
    public static (string Field, string Reason)? Connection(TargetConnection connection, IReadOnlyCollection<string> knownOptions)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (string.IsNullOrWhiteSpace(connection.Host))
        {
            return ("host", "must not be empty");
        }
        if (connection.Host.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            return ("host", "must not contain spaces or control characters");
        }
        if (connection.Port is < 0 or > 65535)
        {
            return ("port", "must be between 0 (the default port) and 65535");
        }
        foreach (var name in connection.Options.Keys)
        {
            if (!knownOptions.Contains(name))
            {
                var known = knownOptions.Count == 0 ? "none are supported" : "known: " + string.Join(", ", knownOptions.Order(StringComparer.Ordinal));
                return ("options", $"unknown option '{name}' ({known})");
            }
        }
        return null;
    }

    /// <summary>Why <paramref name="password"/> cannot be sent at all, or null. The reason never quotes the password.</summary>
    /// <remarks>
    /// An empty password is never sent: LDAP treats a simple bind with an empty password as an
    /// anonymous bind that succeeds, and drivers fall back to password files or environment
    /// variables when the password is empty.
    /// </remarks>
    public static string? PasswordProblem(string? password)
    {
        if (string.IsNullOrEmpty(password))
        {
            return "the password is empty";
        }
        foreach (var c in password)
        {
            if (char.IsControl(c))
            {
                return "the password contains a control character";
            }
        }
        return null;
    }

    /// <summary>Whole milliseconds of a server-side timeout, at least 1 (0 would mean "no limit" to the servers).</summary>
    public static long TimeoutMilliseconds(TimeSpan timeout) =>
        timeout <= TimeSpan.Zero ? 1 : (long)Math.Min(int.MaxValue, Math.Ceiling(timeout.TotalMilliseconds));

    /// <summary>
    /// The driver's own command timeout: longer than the server-side statement timeout, so the
    /// server's timeout fires first and answers with an error (the statement certainly did
    /// nothing) rather than the driver giving up without knowing.
    /// </summary>
    public static int CommandTimeoutSeconds(TimeSpan statementTimeout) => TimeoutSeconds(statementTimeout + ClientSlack);

    /// <summary>How much longer the client waits than the server-side timeout.</summary>
    public static readonly TimeSpan ClientSlack = TimeSpan.FromSeconds(5);

    /// <summary>Whole seconds for a driver's connect timeout, at least 1 (0 would mean "wait forever" to the drivers).</summary>
    public static int TimeoutSeconds(TimeSpan timeout) =>
        timeout <= TimeSpan.Zero ? 1 : (int)Math.Min(int.MaxValue, Math.Ceiling(timeout.TotalSeconds));
}
