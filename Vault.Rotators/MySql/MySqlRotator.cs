using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MySqlConnector;
using Vault.Rotators.Internal;

namespace Vault.Rotators.MySql;

/// <summary>Rotates MySQL and MariaDB account passwords and manages short-lived users (kind <c>mysql</c>).</summary>
/// <remarks>
/// <para>
/// Accounts are <c>user</c> or <c>user@host</c> (see <see cref="MySqlAccount"/>); the host part
/// defaults to the <c>account_host</c> option, itself defaulting to <c>%</c>. A
/// <see cref="Credential.Username"/> (admin or account) is read the same way and the host part is
/// ignored for logging in.
/// </para>
/// <para>
/// On MariaDB the password is sent as its <c>mysql_native_password</c> hash
/// (<c>ALTER USER ... IDENTIFIED BY PASSWORD '*...'</c>), because MariaDB writes
/// <c>IDENTIFIED BY '...'</c> to its general log verbatim. MariaDB refuses pre-hashed passwords when
/// <c>strict_password_validation</c> is on and a password-validation plugin is loaded; the rotator
/// then fails (closed) unless the target opts in with <c>plaintext_fallback=true</c>: then it falls
/// back to <c>IDENTIFIED BY '&lt;plaintext&gt;'</c> (so the plugin can check it), logs a warning
/// (event 7001) saying the plaintext may be in the server's logs, and the account ends up with
/// <c>mysql_native_password</c> either way. On MySQL (5.7, 8.x) the plaintext form is always used: MySQL rewrites the password
/// out of its general and slow logs itself, and keeps the account's authentication plugin.
/// </para>
/// <para>
/// Options: <c>account_host</c>; <c>ssl_mode</c> (<c>verify-full</c>, the default: TLS with the
/// certificate checked against the target's CA bundle or the machine's trusted CAs, the host name
/// and the pin when set; <c>verify-ca</c>; and only on purpose <c>required</c>, <c>preferred</c>,
/// <c>none</c>); <c>plaintext_fallback</c>
/// (<c>false</c> (default) or <c>true</c>). The database, when set, is used by the login check only.
/// Connections are unpooled and the password is handed to the driver through a callback rather than
/// the connection string, which MySqlConnector caches per string for the life of the process even
/// with pooling off.
/// </para>
/// <para>
/// Ephemeral users: neither server can expire an account at a point in time (MariaDB's
/// <c>PASSWORD EXPIRE INTERVAL</c> counts whole days and only forces a password change, which the
/// user could make), so <see cref="EphemeralUser.ExpiresAt"/> is not enforced by the server: the
/// vault's lease reaper revoking the user is the expiry.
/// </para>
/// </remarks>
public sealed class MySqlRotator : ICredentialRotator
{
    /// <summary>Default TCP port.</summary>
    public const int DefaultPort = 3306;

    /// <summary>Option: host part of accounts written without one.</summary>
    public const string AccountHostOption = "account_host";

    /// <summary>Option: TLS mode.</summary>
    public const string SslModeOption = "ssl_mode";

    /// <summary>Option: whether MariaDB may be sent the plaintext when it refuses a pre-hashed password.</summary>
    public const string PlaintextFallbackOption = "plaintext_fallback";

    /// <summary>The TLS mode of a target that does not name one.</summary>
    public const string DefaultSslMode = "verify-full";

    /// <summary>Before verified TLS was the default: the driver's <c>preferred</c>.</summary>
    public IReadOnlyDictionary<string, string> LegacyTransport { get; } = new Dictionary<string, string> { [SslModeOption] = "preferred" };

    private static readonly string[] KnownOptions = [AccountHostOption, SslModeOption, PlaintextFallbackOption];

    private readonly ILogger _logger;

    /// <param name="logger">Receives the warning when a password had to be sent in plaintext; optional.</param>
    public MySqlRotator(ILogger<MySqlRotator>? logger = null) => _logger = (ILogger?)logger ?? NullLogger.Instance;

    public string Kind => "mysql";

    public bool SupportsEphemeralUsers => true;

    public (string Field, string Reason)? Validate(TargetConnection connection, string account)
    {
        if (TargetChecks.Connection(connection, KnownOptions) is { } problem)
        {
            return problem;
        }
        if (connection.Options.TryGetValue(SslModeOption, out var sslMode) && ParseSslMode(sslMode) is null)
        {
            return ("options", "ssl_mode must be one of verify-full, verify-ca, required, preferred, none");
        }
        if (Tls.CertificateCheck.ValidateSettings(connection) is { } tls)
        {
            return tls;
        }
        if (connection.Options.TryGetValue(PlaintextFallbackOption, out var fallback) && !bool.TryParse(fallback, out _))
        {
            return ("options", "plaintext_fallback must be true or false");
        }
        if (connection.Options.TryGetValue(AccountHostOption, out var host) && (host.Length == 0 || host.Any(char.IsControl)))
        {
            return ("options", "account_host must be a non-empty host pattern without control characters");
        }
        if (connection.Database.Any(char.IsControl))
        {
            return ("database", "must not contain control characters");
        }
        return MySqlAccount.Parse(account, DefaultHost(connection)).Problem is { } reason ? ("account", reason) : null;
    }

    public TransportSecurity Transport(TargetConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var mode = connection.Option(SslModeOption, DefaultSslMode).ToLowerInvariant();
        return new TransportSecurity(mode, ParseSslMode(mode) switch
        {
            MySqlSslMode.VerifyFull => null,
            MySqlSslMode.VerifyCA => "the certificate's host name is not checked: any certificate from the CA is accepted",
            MySqlSslMode.Required => "TLS without certificate verification: a machine in the middle can read the passwords (MariaDB: their hashes, enough to log in)",
            MySqlSslMode.None => "plaintext: passwords (MariaDB: their hashes, enough to log in) cross the network in the clear",
            _ => "TLS only if the server offers it, unverified: a machine in the middle can strip it and read the passwords (MariaDB: their hashes)",
        }, ParseSslMode(mode) is MySqlSslMode.VerifyCA or MySqlSslMode.VerifyFull);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The connection or account does not pass <see cref="Validate"/>.</exception>
    public async Task SetPasswordAsync(TargetConnection connection, Credential admin, string account, string newPassword, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(admin);
        var target = ParseOrThrow(connection, account);
        const string step = "set password";
        RejectPassword(step, connection, target, newPassword);
        var session = await MySqlSession.OpenAdminAsync(connection, admin, step, cancellationToken).ConfigureAwait(false);
        await using var sessionScope = session.ConfigureAwait(false);
        await SetCredentialAsync(session, "ALTER USER", step, connection, target, newPassword, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>Looks <c>'user'@'host'</c> up in <c>mysql.user</c>, which the admin must be allowed to read.</remarks>
    /// <exception cref="ArgumentException">The connection or account does not pass <see cref="Validate"/>.</exception>
    public async Task CheckAccountAsync(TargetConnection connection, Credential admin, string account, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(admin);
        var target = ParseOrThrow(connection, account);
        const string step = "check account";
        var session = await MySqlSession.OpenAdminAsync(connection, admin, step, cancellationToken).ConfigureAwait(false);
        await using var sessionScope = session.ConfigureAwait(false);
        long found;
        try
        {
            found = await session.CountAsync("SELECT COUNT(*) FROM mysql.user WHERE User = @user AND Host = @host",
                [("@user", target.User), ("@host", target.Host)], cancellationToken).ConfigureAwait(false);
        }
        catch (MySqlException ex)
        {
            cancellationToken.ThrowIfCancellationRequested();
            throw Plain(step, connection, $"{target} (reading mysql.user)", ex);
        }
        if (found == 0)
        {
            throw new RotatorException(RotatorFailure.AccountNotFound, $"{step} on {MySqlErrors.Describe(connection)}: the account {target} does not exist");
        }
    }

    /// <inheritdoc />
    /// <exception cref="RotatorException">The server answered with something that says nothing about the password.</exception>
    public async Task<LoginCheck> VerifyLoginAsync(TargetConnection connection, Credential account, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(account);
        var login = ParseOrThrow(connection, account.Username);
        if (TargetChecks.PasswordProblem(account.Password) is { } problem)
        {
            return new LoginCheck(LoginOutcome.Refused, problem);
        }
        var session = MySqlSession.Create(connection, login.User, account.Password, connection.Database);
        await using var sessionScope = session.ConfigureAwait(false);
        try
        {
            await session.OpenAsync(cancellationToken).ConfigureAwait(false);
            return LoginCheck.Accepted;
        }
        catch (Exception ex) when (session.CertificateRefusal(connection) is { } refusal && !cancellationToken.IsCancellationRequested && ex is not OperationCanceledException)
        {
            return new LoginCheck(LoginOutcome.Unreachable, refusal);
        }
        catch (MySqlException ex)
        {
            // Drivers may answer a cancelled open or command with their own error.
            cancellationToken.ThrowIfCancellationRequested();
            return MySqlErrors.LoginOutcome(connection, ex);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// <c>CREATE USER</c> with the password set as for <see cref="SetPasswordAsync"/>, then the grants
    /// with <c>{{name}}</c> replaced by <c>'user'@'host'</c>. MySQL cannot roll DDL back, so a failing
    /// grant drops the user again before the failure is reported.
    /// </remarks>
    /// <exception cref="ArgumentException">The user name is not a valid account.</exception>
    public async Task CreateEphemeralUserAsync(TargetConnection connection, Credential admin, EphemeralUser user, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(admin);
        ArgumentNullException.ThrowIfNull(user);
        var target = ParseOrThrow(connection, user.Username);
        const string step = "create ephemeral user";
        RejectPassword(step, connection, target, user.Password);
        var session = await MySqlSession.OpenAdminAsync(connection, admin, step, cancellationToken).ConfigureAwait(false);
        await using var sessionScope = session.ConfigureAwait(false);
        await SetCredentialAsync(session, "CREATE USER", step, connection, target, user.Password, cancellationToken).ConfigureAwait(false);

        var quoted = target.Quote(session.Quoting);
        for (var i = 0; i < user.Grants.Count; i++)
        {
            try
            {
                await session.ExecuteAsync(user.Grants[i].Replace("{{name}}", quoted, StringComparison.Ordinal), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is MySqlException or OperationCanceledException)
            {
                var cleanup = await TryDropAsync(session, quoted).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                if (ex is MySqlException mysql)
                {
                    throw Plain(step, connection, $"grant statement {i + 1} of {user.Grants.Count} for {target} ({cleanup})", mysql);
                }
                throw;
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// <c>DROP USER IF EXISTS</c> first, so nothing new can log in, then <c>KILL CONNECTION</c> for
    /// each session that <c>information_schema.PROCESSLIST</c> shows for the user name (dropping an
    /// account does not end its sessions). Needs the privilege to see and kill other users' threads.
    /// </remarks>
    /// <exception cref="ArgumentException">The user name is not a valid account.</exception>
    public async Task RevokeEphemeralUserAsync(TargetConnection connection, Credential admin, string username, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(admin);
        var target = ParseOrThrow(connection, username);
        const string step = "revoke ephemeral user";
        var session = await MySqlSession.OpenAdminAsync(connection, admin, step, cancellationToken).ConfigureAwait(false);
        await using var sessionScope = session.ConfigureAwait(false);
        var what = target.ToString();
        try
        {
            await session.ExecuteAsync($"DROP USER IF EXISTS {target.Quote(session.Quoting)}", cancellationToken).ConfigureAwait(false);
            what = $"sessions of {target.User}";
            var threads = await session.QueryIdsAsync(
                $"SELECT ID FROM information_schema.PROCESSLIST WHERE USER = {session.Quoting.Literal(target.User)} AND ID <> CONNECTION_ID()",
                cancellationToken).ConfigureAwait(false);
            foreach (var id in threads)
            {
                try
                {
                    await session.ExecuteAsync($"KILL CONNECTION {id}", cancellationToken).ConfigureAwait(false);
                }
                catch (MySqlException ex) when (ex.Number == MySqlErrors.NoSuchThread)
                {
                    // Ended by itself since the list was read.
                }
            }
        }
        catch (MySqlException ex)
        {
            cancellationToken.ThrowIfCancellationRequested();
            throw Plain(step, connection, what, ex);
        }
    }

    /// <summary>Runs <c>{verb} 'user'@'host' IDENTIFIED BY ...</c>, pre-hashed where the server allows it.</summary>
    private async Task SetCredentialAsync(MySqlSession session, string verb, string step, TargetConnection connection, MySqlAccount target, string password, CancellationToken cancellationToken)
    {
        var quoted = target.Quote(session.Quoting);
        var creating = verb == "CREATE USER";
        if (session.IsMariaDb)
        {
            var hash = NativePasswordHash.Compute(password);
            try
            {
                await session.ExecuteAsync($"{verb} {quoted} IDENTIFIED BY PASSWORD {session.Quoting.Literal(hash)}", cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (MySqlException ex)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var diagnostics = await session.DiagnoseAsync(ex, [password, hash]).ConfigureAwait(false);
                if (!diagnostics.RefusesPreHashed || !connection.Option(PlaintextFallbackOption, "false").Equals("true", StringComparison.OrdinalIgnoreCase))
                {
                    throw MySqlErrors.StatementFailed(step, connection, target.ToString(), ex, diagnostics.Codes, diagnostics.PolicyMessages, creating);
                }
                MySqlRotatorLog.PlaintextFallback(_logger, MySqlErrors.Describe(connection), target.ToString());
            }
        }
        try
        {
            await session.ExecuteAsync($"{verb} {quoted} IDENTIFIED BY {session.Quoting.Literal(password)}", cancellationToken).ConfigureAwait(false);
        }
        catch (MySqlException ex)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var diagnostics = await session.DiagnoseAsync(ex, [password]).ConfigureAwait(false);
            throw MySqlErrors.StatementFailed(step, connection, target.ToString(), ex, diagnostics.Codes, diagnostics.PolicyMessages, creating);
        }
    }

    private static async Task<string> TryDropAsync(MySqlSession session, string quoted)
    {
        try
        {
            // Not cancellable: a half-created user must not outlive a cancelled request.
            await session.ExecuteAsync($"DROP USER IF EXISTS {quoted}", CancellationToken.None).ConfigureAwait(false);
            return "the user was dropped again";
        }
        catch (MySqlException ex)
        {
            return $"dropping the user again failed too, error {ex.Number}";
        }
    }

    /// <summary>A statement that carries no secret failed: keep the server's message and the driver exception.</summary>
    private static RotatorException Plain(string step, TargetConnection connection, string what, MySqlException ex)
    {
        var prefix = $"{step} on {MySqlErrors.Describe(connection)} for {what}";
        var failure = ex.Number switch
        {
            MySqlErrors.SpecificAccessDenied or MySqlErrors.AccessDenied or MySqlErrors.DbAccessDenied or MySqlErrors.TableAccessDenied => RotatorFailure.AdminRefused,
            _ when MySqlErrors.IsUnreachable(ex) => RotatorFailure.Unreachable,
            _ => RotatorFailure.Other,
        };
        return new RotatorException(failure, $"{prefix} failed: {ex.Message} ({ex.Number})", ex);
    }

    internal static MySqlSslMode? ParseSslMode(string value) => value.ToLowerInvariant() switch
    {
        "none" or "disable" or "disabled" => MySqlSslMode.None,
        "preferred" or "prefer" => MySqlSslMode.Preferred,
        "required" or "require" => MySqlSslMode.Required,
        "verify-ca" => MySqlSslMode.VerifyCA,
        "verify-full" => MySqlSslMode.VerifyFull,
        _ => null,
    };

    private static string DefaultHost(TargetConnection connection) => connection.Option(AccountHostOption, MySqlAccount.DefaultHost);

    private MySqlAccount ParseOrThrow(TargetConnection connection, string account)
    {
        if (Validate(connection, account) is { } problem)
        {
            throw new ArgumentException($"invalid mysql target: {problem.Field} {problem.Reason}");
        }
        return MySqlAccount.Parse(account, DefaultHost(connection)).Account;
    }

    private static void RejectPassword(string step, TargetConnection connection, MySqlAccount target, string password)
    {
        if (TargetChecks.PasswordProblem(password) is { } problem)
        {
            throw new RotatorException(RotatorFailure.PasswordRejected, $"{step} on {MySqlErrors.Describe(connection)} for {target}: {problem}");
        }
    }
}
