using System.Globalization;
using Npgsql;
using Vault.Rotators.Internal;
using Vault.Rotators.Tls;

namespace Vault.Rotators.Postgres;

/// <summary>Rotates PostgreSQL role passwords and manages short-lived login roles (kind <c>postgres</c>).</summary>
/// <remarks>
/// <para>
/// The new password reaches the server only as a SCRAM-SHA-256 verifier computed here
/// (<c>ALTER ROLE "name" PASSWORD 'SCRAM-SHA-256$4096:...'</c>), so a server running with
/// <c>log_statement = all</c> logs the verifier, never the plaintext. The flip side: server-side
/// password checks (<c>passwordcheck</c>, <c>check_password_hook</c>) see a hashed password and can
/// check almost nothing; the vault's own policy is what applies.
/// </para>
/// <para>
/// Connection: <see cref="TargetConnection.Host"/>, port (0 means 5432), database (empty means
/// <c>postgres</c>; both the admin and the login check connect to it). Option <c>ssl_mode</c>:
/// <c>verify-full</c> (default: TLS, the certificate checked against the target's CA bundle or the
/// machine's trusted CAs, its name against the host, and its key against the pin when one is set),
/// <c>verify-ca</c> (no name check), and, only on purpose, <c>require</c> (TLS, certificate not
/// checked), <c>prefer</c>, <c>allow</c>, <c>disable</c> (plaintext possible). Option
/// <c>channel_binding</c>: <c>require</c> (default whenever TLS is required: SCRAM-SHA-256-PLUS, so
/// a login cannot be relayed through a machine in the middle), <c>prefer</c>, <c>disable</c>.
/// </para>
/// <para>
/// Admin statements run on pooled admin sessions (<see cref="PostgresAdminSessions"/>: at most 4
/// per target and admin credential, idle for at most 30 s); a pooled session the server has closed
/// is replaced and the statement tried once more — except a user's creation whose connection broke
/// after it was sent, which is reported with its effect unknown (it may exist) rather than made
/// twice. Creating and dropping users change shared catalog rows, which PostgreSQL refuses to let
/// two sessions change at once; they take turns per server and admin credential. Every login that
/// proves a password uses a fresh unpooled connection whose data source is disposed after the call.
/// </para>
/// </remarks>
public sealed class PostgresRotator : ICredentialRotator, IDisposable
{
    private readonly PostgresAdminSessions _adminSessions = new();

    /// <summary>Default TCP port.</summary>
    public const int DefaultPort = 5432;

    /// <summary>Database used when <see cref="TargetConnection.Database"/> is empty.</summary>
    public const string DefaultDatabase = "postgres";

    /// <summary>Option naming the TLS mode (libpq's names).</summary>
    public const string SslModeOption = "ssl_mode";

    /// <summary>Option naming the channel binding setting (libpq's names).</summary>
    public const string ChannelBindingOption = "channel_binding";

    /// <summary>The TLS mode of a target that does not name one.</summary>
    public const string DefaultSslMode = "verify-full";

    /// <summary>Before verified TLS was the default: libpq's <c>prefer</c>.</summary>
    public IReadOnlyDictionary<string, string> LegacyTransport { get; } = new Dictionary<string, string> { [SslModeOption] = "prefer" };

    private static readonly string[] KnownOptions = [SslModeOption, ChannelBindingOption];

    /// <summary>How long revocation waits for each terminated session to end (PostgreSQL 14 and later).</summary>
    private const int TerminateWaitMs = 5000;

    public string Kind => "postgres";

    public bool SupportsEphemeralUsers => true;

    public (string Field, string Reason)? Validate(TargetConnection connection, string account) =>
        ConnectionProblem(connection) ?? (PostgresSql.RoleNameProblem(account) is { } reason ? ("account", reason) : null);

    /// <summary>What is wrong with the connection description itself (its CA bundle is parsed to check it), or null.</summary>
    private static (string Field, string Reason)? ConnectionProblem(TargetConnection connection)
    {
        if (TargetChecks.Connection(connection, KnownOptions) is { } problem)
        {
            return problem;
        }
        if (connection.Options.TryGetValue(SslModeOption, out var sslMode) && ParseSslMode(sslMode) is null)
        {
            return ("options", "ssl_mode must be one of verify-full, verify-ca, require, prefer, allow, disable");
        }
        var mode = ParseSslMode(connection.Option(SslModeOption, DefaultSslMode));
        if (connection.Options.TryGetValue(ChannelBindingOption, out var binding))
        {
            if (ParseChannelBinding(binding) is not { } parsed)
            {
                return ("options", "channel_binding must be one of require, prefer, disable");
            }
            if (parsed == ChannelBinding.Require && mode < SslMode.Require)
            {
                return ("options", "channel_binding=require needs TLS: ssl_mode require, verify-ca or verify-full");
            }
        }
        if (Tls.CertificateCheck.ValidateSettings(connection) is { } tls)
        {
            return tls;
        }
        return connection.Database.Contains('\0', StringComparison.Ordinal) ? ("database", "must not contain NUL") : null;
    }

    public TransportSecurity Transport(TargetConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var mode = connection.Option(SslModeOption, DefaultSslMode).ToLowerInvariant();
        var parsed = ParseSslMode(mode);
        return new TransportSecurity(mode, parsed switch
        {
            SslMode.VerifyFull => null,
            SslMode.VerifyCA => "the certificate's host name is not checked: any certificate from the CA is accepted",
            SslMode.Require => "TLS without certificate verification: a machine in the middle can read the passwords",
            SslMode.Disable => "plaintext: passwords cross the network in the clear",
            _ => "TLS only if the server offers it, unverified: a machine in the middle can strip it and read the passwords",
        }, parsed >= SslMode.VerifyCA);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The connection or account does not pass <see cref="Validate"/>.</exception>
    public async Task SetPasswordAsync(TargetConnection connection, Credential admin, string account, string newPassword, CancellationToken cancellationToken)
    {
        ThrowIfInvalid(connection, account);
        ArgumentNullException.ThrowIfNull(admin);
        const string step = "set password";
        RejectUnhashable(step, connection, account, newPassword);
        var sql = $"ALTER ROLE {PostgresSql.QuoteIdentifier(account)} PASSWORD {PostgresSql.QuoteLiteral(ScramVerifier.Create(newPassword))}";

        await OnAdminSessionAsync(connection, admin, step, () => $"role {PostgresSql.QuoteIdentifier(account)}",
            (session, ct) => ExecuteAsync(session, sql, ct), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>Looks the role up in <c>pg_catalog.pg_roles</c> on a pooled admin session.</remarks>
    /// <exception cref="ArgumentException">The connection or account does not pass <see cref="Validate"/>.</exception>
    public async Task CheckAccountAsync(TargetConnection connection, Credential admin, string account, CancellationToken cancellationToken)
    {
        ThrowIfInvalid(connection, account);
        ArgumentNullException.ThrowIfNull(admin);
        const string step = "check account";
        var what = $"role {PostgresSql.QuoteIdentifier(account)}";
        await OnAdminSessionAsync(connection, admin, step, () => what, async (session, ct) =>
        {
            using var exists = new NpgsqlCommand("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", session);
            exists.Parameters.AddWithValue(account);
            if (await exists.ExecuteScalarAsync(ct).ConfigureAwait(false) is null)
            {
                throw new RotatorException(RotatorFailure.AccountNotFound, $"{step} on {PostgresErrors.Describe(connection)}: {what} does not exist");
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <exception cref="RotatorException">The server answered with something that says nothing about the password (e.g. the database does not exist).</exception>
    public async Task<LoginCheck> VerifyLoginAsync(TargetConnection connection, Credential account, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(account);
        ThrowIfInvalid(connection, account.Username);
        if (TargetChecks.PasswordProblem(account.Password) is { } problem)
        {
            return new LoginCheck(LoginOutcome.Refused, problem);
        }
        var check = CertificateCheckFor(connection);
        try
        {
            var dataSource = CreateDataSource(connection, account, check);
            await using var dataSourceScope = dataSource.ConfigureAwait(false);
            var session = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var sessionScope = session.ConfigureAwait(false);
            return LoginCheck.Accepted;
        }
        catch (Exception ex) when (check?.Problem is { } refused && !cancellationToken.IsCancellationRequested)
        {
            return new LoginCheck(LoginOutcome.Unreachable, PostgresErrors.CertificateRefused(connection, refused, ex).Message);
        }
        catch (NpgsqlException ex)
        {
            cancellationToken.ThrowIfCancellationRequested();
            return PostgresErrors.LoginOutcome(connection, ex);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// <c>CREATE ROLE "name" WITH LOGIN PASSWORD '&lt;verifier&gt;' VALID UNTIL '&lt;ExpiresAt, UTC&gt;'</c> and
    /// the grants run in one transaction, so a failing grant leaves no role behind.
    /// </remarks>
    /// <exception cref="ArgumentException">The user name is not a valid role name.</exception>
    public async Task CreateEphemeralUserAsync(TargetConnection connection, Credential admin, EphemeralUser user, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(admin);
        ThrowIfInvalid(connection, user.Username);
        const string step = "create ephemeral user";
        RejectUnhashable(step, connection, user.Username, user.Password);
        var name = PostgresSql.QuoteIdentifier(user.Username);
        var validUntil = user.ExpiresAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture) + "+00";
        var create = $"CREATE ROLE {name} WITH LOGIN PASSWORD {PostgresSql.QuoteLiteral(ScramVerifier.Create(user.Password))} VALID UNTIL {PostgresSql.QuoteLiteral(validUntil)}";

        var what = $"role {name}";
        // Rolled back whole when refused, so run again; never repeated once it may have committed
        // (a broken connection after it was sent: the effect is unknown). Statement by statement
        // (not one batch): a grant may itself hold several statements, which a batch refuses.
        await PostgresRetry.OnConcurrentCatalogUpdateAsync(
            () => OnAdminSessionAsync(connection, admin, step, () => what, async (session, ct) =>
            {
                var transaction = await session.BeginTransactionAsync(ct).ConfigureAwait(false);
                await using var transactionScope = transaction.ConfigureAwait(false);
                what = $"role {name}";
                await ExecuteAsync(session, create, ct).ConfigureAwait(false);
                for (var i = 0; i < user.Grants.Count; i++)
                {
                    what = $"grant statement {i + 1} of {user.Grants.Count} for role {name}";
                    await ExecuteAsync(session, user.Grants[i].Replace("{{name}}", name, StringComparison.Ordinal), ct).ConfigureAwait(false);
                }
                await transaction.CommitAsync(ct).ConfigureAwait(false);
            }, cancellationToken, repeatable: false, changesCatalog: true),
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Makes the role <c>NOLOGIN</c> first so nothing new can connect, terminates its sessions
    /// (waiting up to 5 s each on PostgreSQL 14+), then in one transaction reassigns what it owns in
    /// the target database to the admin, drops its remaining privileges there (<c>DROP OWNED</c>) and
    /// drops the role. Privileges it holds in other databases make <c>DROP ROLE</c> fail (SQLSTATE
    /// 2BP01, reported as <see cref="RotatorFailure.Other"/>).
    /// </remarks>
    /// <exception cref="ArgumentException">The user name is not a valid role name.</exception>
    public async Task RevokeEphemeralUserAsync(TargetConnection connection, Credential admin, string username, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(admin);
        ThrowIfInvalid(connection, username);
        const string step = "revoke ephemeral user";
        var name = PostgresSql.QuoteIdentifier(username);

        // Dropping checks what is left, so it is safe to repeat when refused.
        await PostgresRetry.OnConcurrentCatalogUpdateAsync(
            () => OnAdminSessionAsync(connection, admin, step, () => $"role {name}", (session, ct) => DropRolesAsync(session, [username], ct, noLoginFirst: true), cancellationToken, changesCatalog: true),
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>
    /// What <see cref="RevokeEphemeralUserAsync"/> does, once for all of them on one pooled admin
    /// session: one existence check, their sessions ended, one transaction of
    /// <c>REASSIGN OWNED BY a, b, …</c>, <c>DROP OWNED BY a, b, …</c> and <c>DROP ROLE a, b, …</c>,
    /// and their sessions ended again (any that logged in meanwhile). If the server refuses it
    /// (one of them holds privileges in another database), it rolled back whole and each is
    /// dropped alone, so only the one refused is left, with its own reason.
    /// </remarks>
    public async Task<IReadOnlyDictionary<string, string>> RevokeEphemeralUsersAsync(TargetConnection connection, Credential admin, IReadOnlyList<string> usernames, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(admin);
        ArgumentNullException.ThrowIfNull(usernames);
        var failures = new Dictionary<string, string>(StringComparer.Ordinal);
        var valid = new List<string>();
        // The connection once (its CA bundle is parsed to check it), then each name.
        var connectionProblem = ConnectionProblem(connection);
        foreach (var username in usernames.Distinct(StringComparer.Ordinal))
        {
            if ((connectionProblem ?? (PostgresSql.RoleNameProblem(username) is { } reason ? ("account", reason) : null)) is { } problem)
            {
                failures[username] = $"invalid postgres target: {problem.Field} {problem.Reason}";
            }
            else
            {
                valid.Add(username);
            }
        }
        if (valid.Count == 0)
        {
            return failures;
        }
        const string step = "revoke ephemeral users";
        try
        {
            await PostgresRetry.OnConcurrentCatalogUpdateAsync(
                () => OnAdminSessionAsync(connection, admin, step, () => $"{valid.Count} roles", (session, ct) => DropRolesAsync(session, valid, ct), cancellationToken, changesCatalog: true),
                cancellationToken).ConfigureAwait(false);
        }
        catch (RotatorException ex) when (valid.Count > 1 && ex.Effect == RotatorEffect.Refused)
        {
            // The server refused the batch (rolled back whole: a user holding privileges in another
            // database, a lock that timed out): each alone, so the others go and the refused one
            // says why. Not when it could not be reached or refused the admin: that is every one's.
            foreach (var username in valid)
            {
                try
                {
                    await RevokeEphemeralUserAsync(connection, admin, username, cancellationToken).ConfigureAwait(false);
                }
                catch (RotatorException one)
                {
                    failures[username] = one.Message;
                }
            }
        }
        catch (RotatorException ex)
        {
            foreach (var username in valid)
            {
                failures[username] = ex.Message;
            }
        }
        return failures;
    }

    /// <summary>
    /// Many roles at once, in four round trips: which of them exist (and their ids); their
    /// sessions ended by role id (a session holding a lock on something a role owns would make
    /// <c>REASSIGN OWNED</c> wait); one transaction that reassigns what they own, drops their
    /// privileges and drops them; then, by id again, any session that logged in between. No
    /// <c>NOLOGIN</c> per role: once the drop commits no login is possible.
    /// </summary>
    /// <param name="noLoginFirst">
    /// Make each <c>NOLOGIN</c> first (one user ended alone: if its drop is refused, it at least
    /// logs in no more until a retry drops it). A batch skips it: a refused batch is ended one
    /// by one, which makes it then.
    /// </param>
    private static async Task DropRolesAsync(NpgsqlConnection session, IReadOnlyList<string> usernames, CancellationToken cancellationToken, bool noLoginFirst = false)
    {
        var present = new List<string>();
        var ids = new List<uint>();
        using (var exists = new NpgsqlCommand("SELECT oid, rolname FROM pg_catalog.pg_roles WHERE rolname = ANY($1)", session))
        {
            exists.Parameters.AddWithValue(usernames.ToArray());
            var reader = await exists.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using var readerScope = reader.ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                ids.Add(reader.GetFieldValue<uint>(0));
                present.Add(reader.GetString(1));
            }
        }
        if (present.Count == 0)
        {
            return;
        }
        var names = present.Select(PostgresSql.QuoteIdentifier).ToList();
        if (noLoginFirst)
        {
            foreach (var name in names)
            {
                await ExecuteAsync(session, $"ALTER ROLE {name} NOLOGIN", cancellationToken).ConfigureAwait(false);
            }
        }
        await TerminateSessionsAsync(session, ids, cancellationToken).ConfigureAwait(false);
        var list = string.Join(", ", names);
        try
        {
            // One Sync: the three run as one transaction, all or nothing.
            var drop = new NpgsqlBatch(session);
            await using (drop.ConfigureAwait(false))
            {
                drop.BatchCommands.Add(new NpgsqlBatchCommand($"REASSIGN OWNED BY {list} TO CURRENT_USER"));
                drop.BatchCommands.Add(new NpgsqlBatchCommand($"DROP OWNED BY {list}"));
                drop.BatchCommands.Add(new NpgsqlBatchCommand($"DROP ROLE IF EXISTS {list}"));
                await drop.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedObject && names.Count == 1 && !cancellationToken.IsCancellationRequested)
        {
            // The one role was dropped concurrently since the existence check: the goal is met.
        }
        await TerminateSessionsAsync(session, ids, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Ends the sessions of the roles with these ids (waiting up to 5 s for each on PostgreSQL 14 and later).</summary>
    private static async Task TerminateSessionsAsync(NpgsqlConnection session, List<uint> ids, CancellationToken cancellationToken)
    {
        var terminate = session.PostgreSqlVersion.Major >= 14
            ? $"SELECT pg_catalog.pg_terminate_backend(pid, {TerminateWaitMs}) FROM pg_catalog.pg_stat_activity WHERE usesysid = ANY($1) AND pid <> pg_catalog.pg_backend_pid()"
            : "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usesysid = ANY($1) AND pid <> pg_catalog.pg_backend_pid()";
        using var kill = new NpgsqlCommand(terminate, session);
        kill.Parameters.Add(new NpgsqlParameter { Value = ids.ToArray(), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Oid });
        await kill.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs <paramref name="work"/> on a pooled admin session. A pooled session is first checked
    /// with a round trip that changes nothing; if it was lost (the server restarted or ended it
    /// since), or the work loses it, the pool is cleared and the work runs once more on a new
    /// session — unless it is not <paramref name="repeatable"/> and the connection broke after it
    /// was sent (it may have been applied): then the failure says the effect is unknown.
    /// </summary>
    /// <param name="what">What the work is acting on when it fails (read at the failure).</param>
    /// <exception cref="RotatorException">
    /// <see cref="RotatorEffect.NotSent"/> when no usable session could be had and nothing of the
    /// work left this process; <see cref="RotatorEffect.Refused"/> when the server answered with
    /// an error; <see cref="RotatorEffect.Unknown"/> when a session broke after the work was sent.
    /// </exception>
    private async Task OnAdminSessionAsync(TargetConnection connection, Credential admin, string step, Func<string> what, Func<NpgsqlConnection, CancellationToken, Task> work, CancellationToken cancellationToken, bool repeatable = true, bool changesCatalog = false)
    {
        // The TLS mode (require and the verifying modes share one connection string), the CA bundle
        // and the pin are not in the connection string: they key the pool too. The pool keeps the
        // check its data source was built with, which is the one that saw a refused handshake.
        var (dataSource, check, catalogGate) = _adminSessions.For(Settings(connection, admin),
            $"{connection.Option(SslModeOption, DefaultSslMode).ToLowerInvariant()}\n{connection.CaCertificates}\n{connection.CertificatePin}",
            settings =>
            {
                var built = CertificateCheckFor(connection);
                return (Build(settings, built), built);
            });
        if (changesCatalog)
        {
            // PostgreSQL refuses, rather than queues, a second session changing the same catalog
            // row (XX000 "tuple concurrently updated": GRANTs on one database or schema, the
            // DROP OWNED that revokes them), and the refused session is closed. One such change
            // at a time per server and admin costs a queue here instead of a new TLS login each.
            // Bounded: a creation queued here past the vault's creation timeout would make a user
            // whose lease the reaper has already ended.
            if (!await catalogGate.WaitAsync(connection.ConnectTimeout + connection.StatementTimeout, cancellationToken).ConfigureAwait(false))
            {
                throw new RotatorException(RotatorFailure.Unreachable,
                    $"{step} on {PostgresErrors.Describe(connection)}: another change to its roles did not finish within {connection.ConnectTimeout + connection.StatementTimeout}; nothing was sent",
                    null, RotatorEffect.NotSent);
            }
        }
        try
        {
            var maybeSent = false;
            for (var attempt = 1; ; attempt++)
            {
                NpgsqlConnection session;
                try
                {
                    session = await OpenAsAdminAsync(dataSource, check, step, connection, cancellationToken).ConfigureAwait(false);
                }
                catch (RotatorException ex) when (maybeSent)
                {
                    // The first try's session broke after its statement left: it may have been applied.
                    throw new RotatorException(ex.Failure, ex.Message, ex.InnerException, RotatorEffect.Unknown);
                }
                await using var sessionScope = session.ConfigureAwait(false);
                if (attempt == 1)
                {
                    try
                    {
                        // A pooled session may have died while idle; find out before the work is sent,
                        // so a server that is down now is "never sent", not "outcome unknown".
                        await ExecuteAsync(session, "SELECT 1", cancellationToken).ConfigureAwait(false);
                    }
                    catch (NpgsqlException) when (!cancellationToken.IsCancellationRequested)
                    {
                        dataSource.Clear();
                        continue;
                    }
                }
                try
                {
                    await work(session, cancellationToken).ConfigureAwait(false);
                    return;
                }
                catch (NpgsqlException ex) when (attempt == 1 && SessionWasLost(ex) && (repeatable || ex is PostgresException) && !cancellationToken.IsCancellationRequested)
                {
                    // The pool's other idle sessions likely died the same way (a restart): drop
                    // them, and try again on a new session. A server error (a terminated backend)
                    // aborted the statement; a broken connection may have carried it to the server.
                    maybeSent = ex is not PostgresException;
                    dataSource.Clear();
                }
                catch (NpgsqlException ex)
                {
                    // Drivers may answer a cancelled open or command with their own error.
                    cancellationToken.ThrowIfCancellationRequested();
                    var failure = PostgresErrors.StatementFailed(step, connection, what(), ex);
                    throw maybeSent && failure.Effect != RotatorEffect.Unknown
                        ? new RotatorException(failure.Failure, failure.Message, failure.InnerException, RotatorEffect.Unknown)
                        : failure;
                }
            }
        }
        finally
        {
            if (changesCatalog)
            {
                catalogGate.Release();
            }
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection session, string sql, CancellationToken cancellationToken)
    {
        using var command = new NpgsqlCommand(sql, session);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<NpgsqlConnection> OpenAsAdminAsync(NpgsqlDataSource dataSource, CertificateCheck? check, string step, TargetConnection connection, CancellationToken cancellationToken)
    {
        try
        {
            return await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (check?.Problem is { } problem && !cancellationToken.IsCancellationRequested)
        {
            // Refused during the TLS handshake, before the startup message and any password.
            throw new RotatorException(RotatorFailure.Unreachable, $"{step} on {PostgresErrors.CertificateRefused(connection, problem, ex).Message}", ex, RotatorEffect.NotSent);
        }
        catch (NpgsqlException ex)
        {
            cancellationToken.ThrowIfCancellationRequested();
            throw PostgresErrors.AdminConnectFailed(step, connection, ex);
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            // Name resolution and socket errors the driver does not wrap.
            throw new RotatorException(RotatorFailure.Unreachable, $"{step} on {PostgresErrors.Describe(connection)}: admin login failed, server unreachable: {ex.Message}", ex, RotatorEffect.NotSent);
        }
    }

    /// <summary>
    /// The session, not the statement, failed: the connection broke, or the server ended the
    /// session (class 57P: shut down, restarted, terminated by an admin; class 08: connection).
    /// </summary>
    private static bool SessionWasLost(NpgsqlException ex) =>
        ex is not PostgresException pg || pg.SqlState.StartsWith("57P", StringComparison.Ordinal) || pg.SqlState.StartsWith("08", StringComparison.Ordinal);

    /// <summary>A fresh, unpooled data source; dispose it after the call.</summary>
    private static NpgsqlDataSource CreateDataSource(TargetConnection connection, Credential credential, CertificateCheck? check)
    {
        var settings = Settings(connection, credential);
        // A pooled connection opened before a password change would still log in afterwards.
        settings.Pooling = false;
        return Build(settings, check);
    }

    /// <summary>The certificate check of a verifying mode, or null for the modes that check nothing.</summary>
    private static CertificateCheck? CertificateCheckFor(TargetConnection connection) =>
        ParseSslMode(connection.Option(SslModeOption, DefaultSslMode)) switch
        {
            SslMode.VerifyFull => CertificateCheck.For(connection, checkName: true),
            SslMode.VerifyCA => CertificateCheck.For(connection, checkName: false),
            _ => null,
        };

    private static NpgsqlConnectionStringBuilder Settings(TargetConnection connection, Credential credential)
    {
        var mode = ParseSslMode(connection.Option(SslModeOption, DefaultSslMode)) ?? SslMode.VerifyFull;
        var settings = new NpgsqlConnectionStringBuilder
        {
            Host = connection.Host,
            Port = connection.Port == 0 ? DefaultPort : connection.Port,
            Database = connection.Database.Length > 0 ? connection.Database : DefaultDatabase,
            Username = credential.Username,
            Password = credential.Password,
            Enlist = false,
            Timeout = TargetChecks.TimeoutSeconds(connection.ConnectTimeout),
            // Bounds every statement on the server itself, lock waits included, for the whole
            // session (startup options survive the pool's DISCARD ALL): a statement whose client died
            // cannot take effect later than this after it was sent. The vault's reconcile relies on it.
            Options = $"-c statement_timeout={TargetChecks.TimeoutMilliseconds(connection.StatementTimeout)} -c lock_timeout={TargetChecks.TimeoutMilliseconds(connection.StatementTimeout)}",
            CommandTimeout = TargetChecks.CommandTimeoutSeconds(connection.StatementTimeout),
            // The verifying modes are Require plus the vault's own check of the certificate
            // (CertificateCheck, given to the data source): Npgsql's VerifyCA/VerifyFull read the CA
            // from a file and cannot say what was wrong with a certificate.
            SslMode = mode >= SslMode.Require ? SslMode.Require : mode,
            ApplicationName = "vault-rotator",
        };
        // Whenever TLS is required, SCRAM-SHA-256-PLUS: the login is bound to this TLS session, and
        // no other method is answered (channel binding alone would still hand a password to a
        // server that asks for it in cleartext).
        settings.ChannelBinding = ParseChannelBinding(connection.Option(ChannelBindingOption, "")) ?? (mode >= SslMode.Require ? ChannelBinding.Require : ChannelBinding.Prefer);
        if (settings.ChannelBinding == ChannelBinding.Require)
        {
            settings.RequireAuth = "ScramSHA256";
        }
        return settings;
    }

    private static NpgsqlDataSource Build(NpgsqlConnectionStringBuilder settings, CertificateCheck? check)
    {
        var dataSource = new NpgsqlDataSourceBuilder(settings.ConnectionString);
        if (check is not null)
        {
            dataSource.UseSslClientAuthenticationOptionsCallback(options => options.RemoteCertificateValidationCallback = check.Validate);
        }
        // Only built-in types are used; skips the type-loading query on every open.
        dataSource.ConfigureTypeLoading(typeLoading => typeLoading.EnableTypeLoading(false));
        return dataSource.Build();
    }

    public void Dispose() => _adminSessions.Dispose();

    private static SslMode? ParseSslMode(string value) => value.ToLowerInvariant() switch
    {
        "disable" => SslMode.Disable,
        "allow" => SslMode.Allow,
        "prefer" => SslMode.Prefer,
        "require" => SslMode.Require,
        "verify-ca" => SslMode.VerifyCA,
        "verify-full" => SslMode.VerifyFull,
        _ => null,
    };

    private static ChannelBinding? ParseChannelBinding(string value) => value.ToLowerInvariant() switch
    {
        "disable" => ChannelBinding.Disable,
        "prefer" => ChannelBinding.Prefer,
        "require" => ChannelBinding.Require,
        _ => null,
    };

    private void ThrowIfInvalid(TargetConnection connection, string account)
    {
        if (Validate(connection, account) is { } problem)
        {
            throw new ArgumentException($"invalid postgres target: {problem.Field} {problem.Reason}");
        }
    }

    private static void RejectUnhashable(string step, TargetConnection connection, string account, string password)
    {
        var problem = TargetChecks.PasswordProblem(password)
            ?? (ScramVerifier.IsSupported(password) ? null : "the password has characters outside printable ASCII, which the client-side SCRAM verifier does not support");
        if (problem is not null)
        {
            throw new RotatorException(RotatorFailure.PasswordRejected, $"{step} on {PostgresErrors.Describe(connection)} for role {PostgresSql.QuoteIdentifier(account)}: {problem}");
        }
    }
}
