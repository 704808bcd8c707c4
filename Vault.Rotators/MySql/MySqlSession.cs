using MySqlConnector;
using Vault.Rotators.Internal;
using Vault.Rotators.Tls;

namespace Vault.Rotators.MySql;

/// <summary>One unpooled connection with what the rotator needs to know about the server: its flavour and SQL mode.</summary>
internal sealed class MySqlSession : IAsyncDisposable
{
    private readonly MySqlConnection _connection;

    private MySqlSession(MySqlConnection connection) => _connection = connection;

    /// <summary>Whether the server is MariaDB (which takes pre-hashed passwords) rather than MySQL.</summary>
    public bool IsMariaDb { get; private set; }

    /// <summary>Literal quoting for the session's SQL mode; set by <see cref="OpenAdminAsync"/>.</summary>
    public MySqlQuoting Quoting { get; private set; } = new(noBackslashEscapes: false);

    public static MySqlSession Create(TargetConnection connection, string user, string password, string database)
    {
        var builder = new MySqlConnectionStringBuilder
        {
            Server = connection.Host,
            Port = (uint)(connection.Port == 0 ? MySqlRotator.DefaultPort : connection.Port),
            UserID = user,
            Database = database,
            // A pooled connection opened before a password change would still be handed out afterwards.
            Pooling = false,
            AutoEnlist = false,
            ConnectionTimeout = (uint)TargetChecks.TimeoutSeconds(connection.ConnectTimeout),
            // Longer than the server-side bounds set by OpenAdminAsync, so the server's timeout answers first.
            DefaultCommandTimeout = (uint)TargetChecks.CommandTimeoutSeconds(connection.StatementTimeout),
            ApplicationName = "vault-rotator",
        };
        var mode = MySqlRotator.ParseSslMode(connection.Option(MySqlRotator.SslModeOption, MySqlRotator.DefaultSslMode)) ?? MySqlSslMode.VerifyFull;
        var check = mode switch
        {
            MySqlSslMode.VerifyFull => CertificateCheck.For(connection, checkName: true),
            MySqlSslMode.VerifyCA => CertificateCheck.For(connection, checkName: false),
            _ => null,
        };
        // The verifying modes are Required plus the vault's own check of the certificate: the
        // driver's VerifyCA/VerifyFull read the CA from a file and cannot say what was wrong.
        builder.SslMode = check is null ? mode : MySqlSslMode.Required;
        // Not in the connection string: MySqlConnector keeps every unpooled connection string it has
        // seen in a static dictionary for the life of the process.
        var session = new MySqlConnection(builder.ConnectionString) { ProvidePasswordCallback = _ => password };
        if (check is not null)
        {
            session.RemoteCertificateValidationCallback = check.Validate;
        }
        return new MySqlSession(session) { Check = check };
    }

    /// <summary>The check of the server's certificate in the verifying modes; null in the others.</summary>
    public CertificateCheck? Check { get; private init; }

    /// <summary>
    /// What the certificate check refused in the handshake of a failed open, as one line naming the
    /// host and the problem (the handshake comes before the login: nothing was sent), or null when
    /// the open failed for another reason.
    /// </summary>
    public string? CertificateRefusal(TargetConnection connection) =>
        Check?.Problem is { } problem ? $"{MySqlErrors.Describe(connection)}: TLS certificate of {connection.Host} refused, nothing sent: {problem}" : null;

    /// <summary>Opens an admin session and reads the server's flavour and SQL mode.</summary>
    /// <exception cref="RotatorException">The login failed.</exception>
    public static async Task<MySqlSession> OpenAdminAsync(TargetConnection connection, Credential admin, string step, CancellationToken cancellationToken)
    {
        var login = MySqlAccount.Parse(admin.Username, MySqlAccount.DefaultHost);
        if (login.Problem is { } problem)
        {
            throw new RotatorException(RotatorFailure.AdminRefused, $"{step} on {MySqlErrors.Describe(connection)}: the admin user name {problem}", effect: RotatorEffect.NotSent);
        }
        if (TargetChecks.PasswordProblem(admin.Password) is { } passwordProblem)
        {
            throw new RotatorException(RotatorFailure.AdminRefused, $"{step} on {MySqlErrors.Describe(connection)}: admin login not attempted, {passwordProblem}", effect: RotatorEffect.NotSent);
        }
        var session = Create(connection, login.Account.User, admin.Password, database: "");
        try
        {
            await session.OpenAsync(cancellationToken).ConfigureAwait(false);
            session.IsMariaDb = session._connection.ServerVersion.Contains("MariaDB", StringComparison.OrdinalIgnoreCase);
            using (var bound = new MySqlCommand(BoundStatements(connection.StatementTimeout, session.IsMariaDb), session._connection))
            {
                await bound.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            using var command = new MySqlCommand(MySqlQuoting.SqlModeQuery, session._connection);
            session.Quoting = MySqlQuoting.ForSqlMode(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string);
            return session;
        }
        catch (Exception ex) when (session.CertificateRefusal(connection) is { } refusal && !cancellationToken.IsCancellationRequested)
        {
            await session.DisposeAsync().ConfigureAwait(false);
            throw new RotatorException(RotatorFailure.Unreachable, $"{step} on {refusal}", ex, RotatorEffect.NotSent);
        }
        catch (MySqlException ex)
        {
            // Drivers may answer a cancelled open or command with their own error.
            cancellationToken.ThrowIfCancellationRequested();
            await session.DisposeAsync().ConfigureAwait(false);
            throw MySqlErrors.AdminConnectFailed(step, connection, ex);
        }
        catch
        {
            await session.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Bounds every statement of the admin session on the server itself, so a statement whose
    /// client died (the vault was killed while it waited for a lock) cannot take effect later than
    /// <paramref name="timeout"/> after it was sent; the vault's reconcile waits that long. MariaDB:
    /// <c>max_statement_time</c> bounds the whole statement (it also ends waits for table-level
    /// locks, which <c>lock_wait_timeout</c> does not); the lock waits get the same bound. MySQL has
    /// no statement timeout for account statements (<c>max_execution_time</c> is for SELECT), so its
    /// two lock waits (metadata, then InnoDB rows of the grant tables) get half the bound each.
    /// </summary>
    internal static string BoundStatements(TimeSpan timeout, bool isMariaDb)
    {
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        if (isMariaDb)
        {
            var seconds = TargetChecks.TimeoutMilliseconds(timeout) / 1000.0;
            var whole = TargetChecks.TimeoutSeconds(timeout);
            return string.Format(invariant, "SET SESSION max_statement_time = {0:0.###}, lock_wait_timeout = {1}, innodb_lock_wait_timeout = {1}", seconds, whole);
        }
        var half = TargetChecks.TimeoutSeconds(timeout / 2);
        return string.Format(invariant, "SET SESSION lock_wait_timeout = {0}, innodb_lock_wait_timeout = {0}", half);
    }

    public Task OpenAsync(CancellationToken cancellationToken) => _connection.OpenAsync(cancellationToken);

    public async Task ExecuteAsync(string sql, CancellationToken cancellationToken)
    {
        using var command = new MySqlCommand(sql, _connection);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<long> CountAsync(string sql, IReadOnlyList<(string Name, string Value)> parameters, CancellationToken cancellationToken)
    {
        using var command = new MySqlCommand(sql, _connection);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
    }

    public async Task<List<long>> QueryIdsAsync(string sql, CancellationToken cancellationToken)
    {
        using var command = new MySqlCommand(sql, _connection);
        var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using var readerScope = reader.ConfigureAwait(false);
        var ids = new List<long>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            ids.Add(Convert.ToInt64(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture));
        }
        return ids;
    }

    /// <summary>
    /// The error numbers behind a failed statement. MariaDB reports a failed <c>ALTER USER</c> as
    /// 1396 and lists the cause (1290 strict_password_validation, 1819 policy, 1410 no such user)
    /// only in <c>SHOW WARNINGS</c>.
    /// </summary>
    /// <param name="secrets">Strings no returned message may contain; a message that does is dropped.</param>
    public async Task<Diagnostics> DiagnoseAsync(MySqlException ex, IReadOnlyList<string> secrets)
    {
        var codes = new List<int> { ex.Number };
        var policy = new List<string>();
        var refusesPreHashed = IsStrictPasswordValidation(ex.Number, ex.Message);
        if (_connection.State == System.Data.ConnectionState.Open)
        {
            try
            {
                using var command = new MySqlCommand("SHOW WARNINGS", _connection);
                var reader = await command.ExecuteReaderAsync(CancellationToken.None).ConfigureAwait(false);
                await using var readerScope = reader.ConfigureAwait(false);
                while (await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false))
                {
                    var code = Convert.ToInt32(reader.GetValue(1), System.Globalization.CultureInfo.InvariantCulture);
                    var message = reader.GetString(2);
                    if (!codes.Contains(code))
                    {
                        codes.Add(code);
                    }
                    refusesPreHashed |= IsStrictPasswordValidation(code, message);
                    if (code == MySqlErrors.NotValidPassword && !secrets.Any(s => message.Contains(s, StringComparison.Ordinal)) && !policy.Contains(message))
                    {
                        policy.Add(message);
                    }
                }
            }
            catch (MySqlException)
            {
                // Only extra detail; the statement's own error is reported either way.
            }
        }
        return new Diagnostics(codes, policy, refusesPreHashed);
    }

    public ValueTask DisposeAsync() => _connection.DisposeAsync();

    /// <summary>1290 is also what <c>read_only</c> raises; only strict_password_validation may lead to the plaintext fallback.</summary>
    private static bool IsStrictPasswordValidation(int code, string message) =>
        code == MySqlErrors.OptionPreventsStatement && message.Contains("strict-password-validation", StringComparison.OrdinalIgnoreCase);

    /// <param name="Codes">The statement's error number first, then those from <c>SHOW WARNINGS</c>.</param>
    /// <param name="PolicyMessages">The server's password-policy explanations (never containing a secret).</param>
    /// <param name="RefusesPreHashed">The server refused a pre-hashed password because of strict_password_validation.</param>
    internal sealed record Diagnostics(IReadOnlyList<int> Codes, IReadOnlyList<string> PolicyMessages, bool RefusesPreHashed);
}
