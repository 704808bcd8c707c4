namespace Vault.Rotators;

/// <summary>
/// Does one thing to one kind of system: changes an account's password, checks a login, and
/// creates or drops short-lived users. Knows nothing of the vault: it is handed a connection,
/// the admin credential and the account, and reports what the system said.
/// </summary>
/// <remarks>
/// Implementations must never put a password (new, current or admin) into an exception message,
/// a log line or a statement the target system logs in plaintext where the system offers a way
/// around it. Failures are reported as <see cref="RotatorException"/> with a
/// <see cref="RotatorFailure"/> so the caller can tell "the server is down" from "the target
/// refused the password" from "the admin may not do this".
/// </remarks>
public interface ICredentialRotator
{
    /// <summary>The kind this rotator is registered under (<c>postgres</c>, <c>mysql</c>, <c>ldap</c>).</summary>
    string Kind { get; }

    /// <summary>Checks a connection description before it is stored (e.g. an LDAP target needs a base DN).</summary>
    /// <returns>Null when valid, else (field, reason) with field one of <c>host</c>, <c>port</c>, <c>database</c>, <c>options</c>, <c>account</c>.</returns>
    (string Field, string Reason)? Validate(TargetConnection connection, string account);

    /// <summary>
    /// The options that keep a target stored before verified TLS became the default reaching its
    /// system as it did then (<c>ssl_mode=prefer</c>, <c>tls=none</c>, …). The vault applies them to
    /// a stored target that names none of these options, and names them for every target it
    /// registers now, so a stored target without them is one from before.
    /// </summary>
    IReadOnlyDictionary<string, string> LegacyTransport { get; }

    /// <summary>How this rotator would reach <paramref name="connection"/>'s system: its TLS mode, and what is weaker than verified TLS about it.</summary>
    TransportSecurity Transport(TargetConnection connection);

    /// <summary>Sets <paramref name="account"/>'s password to <paramref name="newPassword"/>, authenticating as <paramref name="admin"/>.</summary>
    /// <exception cref="RotatorException">The system was unreachable, refused the admin, or rejected the password.</exception>
    Task SetPasswordAsync(TargetConnection connection, Credential admin, string account, string newPassword, CancellationToken cancellationToken);

    /// <summary>Logs in to the system as <paramref name="account"/> with a fresh connection (no pooling).</summary>
    /// <returns><see cref="LoginOutcome.Accepted"/> or <see cref="LoginOutcome.Refused"/>; an unreachable server is <see cref="LoginOutcome.Unreachable"/>, not an exception.</returns>
    Task<LoginCheck> VerifyLoginAsync(TargetConnection connection, Credential account, CancellationToken cancellationToken);

    /// <summary>
    /// Checks, before a target is registered, that <paramref name="admin"/> logs in to the system
    /// and that <paramref name="account"/> exists there. Changes nothing.
    /// </summary>
    /// <exception cref="RotatorException">
    /// <see cref="RotatorFailure.AdminRefused"/>: the admin credential was refused (or may not look
    /// the account up); <see cref="RotatorFailure.AccountNotFound"/>: no such account;
    /// <see cref="RotatorFailure.Unreachable"/>: the system could not be reached.
    /// </exception>
    Task CheckAccountAsync(TargetConnection connection, Credential admin, string account, CancellationToken cancellationToken);

    /// <summary>Whether <see cref="CreateEphemeralUserAsync"/> and <see cref="RevokeEphemeralUserAsync"/> are supported.</summary>
    bool SupportsEphemeralUsers { get; }

    /// <summary>Creates a short-lived user that expires on the system itself at <see cref="EphemeralUser.ExpiresAt"/> where the system allows it.</summary>
    /// <exception cref="NotSupportedException">When <see cref="SupportsEphemeralUsers"/> is false.</exception>
    Task CreateEphemeralUserAsync(TargetConnection connection, Credential admin, EphemeralUser user, CancellationToken cancellationToken);

    /// <summary>Drops a user made by <see cref="CreateEphemeralUserAsync"/> and ends its sessions. Dropping a user that is already gone succeeds.</summary>
    Task RevokeEphemeralUserAsync(TargetConnection connection, Credential admin, string username, CancellationToken cancellationToken);

    /// <summary>
    /// Drops several users made by <see cref="CreateEphemeralUserAsync"/>, each as
    /// <see cref="RevokeEphemeralUserAsync"/> would, in as few round trips as the system allows
    /// (many leases ending at once). A user already gone is dropped. One user the system refuses
    /// to drop does not keep the others.
    /// </summary>
    /// <returns>The users not dropped, each with why (a message that names no password); empty when every one is gone.</returns>
    async Task<IReadOnlyDictionary<string, string>> RevokeEphemeralUsersAsync(TargetConnection connection, Credential admin, IReadOnlyList<string> usernames, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(usernames);
        var failures = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var username in usernames)
        {
            try
            {
                await RevokeEphemeralUserAsync(connection, admin, username, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is RotatorException or ArgumentException)
            {
                failures[username] = ex.Message;
            }
        }
        return failures;
    }
}
