namespace Vault.Rotators;

/// <summary>Where a target system is. Holds no secret.</summary>
/// <param name="Host">Host name or address.</param>
/// <param name="Port">TCP port; 0 means the kind's default.</param>
/// <param name="Database">Database name (postgres, mysql) or base DN (ldap); may be empty.</param>
/// <param name="Options">Kind-specific settings such as <c>ssl_mode</c> or <c>account_host</c>; never secrets.</param>
public sealed record TargetConnection(string Host, int Port, string Database, IReadOnlyDictionary<string, string> Options)
{
    /// <summary>How long to wait for the system to answer a connection attempt.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The longest an admin statement may run on the system, waiting for locks included, enforced
    /// by the system itself where it can (PostgreSQL <c>statement_timeout</c> and <c>lock_timeout</c>,
    /// MariaDB <c>max_statement_time</c>, MySQL lock wait timeouts), so a statement sent by a
    /// process that has since died cannot take effect later than this after it was sent.
    /// </summary>
    public TimeSpan StatementTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// PEM certificates of the CAs the system's TLS certificate must chain to, instead of the
    /// machine's trust store; empty for the machine's store. Not secret.
    /// </summary>
    public string CaCertificates { get; init; } = "";

    /// <summary>
    /// Optional pin of the system's certificate key: <c>sha256:</c> and the base64 SHA-256 of its
    /// DER SubjectPublicKeyInfo (as <c>openssl x509 -pubkey | openssl pkey -pubin -outform der |
    /// openssl dgst -sha256 -binary | base64</c> prints it); checked on top of the CA, so a private
    /// CA that signs other hosts' certificates cannot stand in for this one. Empty for none.
    /// </summary>
    public string CertificatePin { get; init; } = "";

    /// <summary>An option's value, or <paramref name="fallback"/> when unset.</summary>
    public string Option(string name, string fallback) => Options.TryGetValue(name, out var value) && value.Length > 0 ? value : fallback;
}

/// <summary>A user name (or LDAP DN) and its password.</summary>
public sealed record Credential(string Username, string Password)
{
    /// <summary>Never prints the password.</summary>
    public override string ToString() => $"Credential {{ Username = {Username} }}";
}

/// <summary>A short-lived user to create: random name and password, the database's own expiry, and the statements that grant it access.</summary>
/// <param name="Username">Generated user name.</param>
/// <param name="Password">Generated password.</param>
/// <param name="ExpiresAt">When the system itself should stop accepting the user (e.g. PostgreSQL <c>VALID UNTIL</c>).</param>
/// <param name="Grants">Statements run after creation; <c>{{name}}</c> is replaced by the quoted user name.</param>
public sealed record EphemeralUser(string Username, string Password, DateTimeOffset ExpiresAt, IReadOnlyList<string> Grants)
{
    /// <summary>Never prints the password.</summary>
    public override string ToString() => $"EphemeralUser {{ Username = {Username}, ExpiresAt = {ExpiresAt:O} }}";
}

/// <summary>What a login attempt found.</summary>
public enum LoginOutcome
{
    /// <summary>The system accepted the credential.</summary>
    Accepted,
    /// <summary>The system answered and refused the credential (wrong password, account may not log in).</summary>
    Refused,
    /// <summary>The system could not be reached or did not answer; says nothing about the credential.</summary>
    Unreachable,
}

/// <summary>A login attempt's outcome and, when not accepted, the reason (never containing a password).</summary>
public sealed record LoginCheck(LoginOutcome Outcome, string? Reason = null)
{
    public static LoginCheck Accepted { get; } = new(LoginOutcome.Accepted);
}
