using System.Net.Sockets;
using Npgsql;

namespace Vault.Rotators.Postgres;

/// <summary>
/// Turns Npgsql failures into <see cref="RotatorFailure"/>s. Messages name the step, the server and
/// the role; the server's own message text is kept because the statements this rotator sends never
/// contain a plaintext password (only SCRAM verifiers), so nothing the server echoes can hold one.
/// </summary>
internal static class PostgresErrors
{
    public static string Describe(TargetConnection connection) =>
        $"postgres {connection.Host}:{(connection.Port == 0 ? PostgresRotator.DefaultPort : connection.Port)}";

    /// <summary>The system's certificate was refused during the handshake: nothing but the TLS hello left the vault. The message names the host and what was wrong.</summary>
    public static RotatorException CertificateRefused(TargetConnection connection, string problem, Exception ex) =>
        new(RotatorFailure.Unreachable, $"{Describe(connection)}: TLS certificate of {connection.Host} refused, nothing sent: {problem}", ex, RotatorEffect.NotSent);

    public static RotatorException AdminConnectFailed(string step, TargetConnection connection, NpgsqlException ex)
    {
        // No statement of the step is sent before the admin session is open.
        const RotatorEffect notSent = RotatorEffect.NotSent;
        var prefix = $"{step} on {Describe(connection)}: admin login";
        if (ex is PostgresException pg)
        {
            return pg.SqlState switch
            {
                PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification or PostgresErrorCodes.InsufficientPrivilege =>
                    new RotatorException(RotatorFailure.AdminRefused, $"{prefix} refused: {pg.MessageText} ({pg.SqlState})", ex, notSent),
                _ when IsUnavailable(pg.SqlState) =>
                    new RotatorException(RotatorFailure.Unreachable, $"{prefix} failed, server not accepting connections: {pg.MessageText} ({pg.SqlState})", ex, notSent),
                _ => new RotatorException(RotatorFailure.Other, $"{prefix} failed: {pg.MessageText} ({pg.SqlState})", ex, notSent),
            };
        }
        return IsNetwork(ex)
            ? new RotatorException(RotatorFailure.Unreachable, $"{prefix} failed, server unreachable: {NetworkReason(ex)}", ex, notSent)
            : new RotatorException(RotatorFailure.Other, $"{prefix} failed: {ex.Message}", ex, notSent);
    }

    public static RotatorException StatementFailed(string step, TargetConnection connection, string what, NpgsqlException ex)
    {
        var prefix = $"{step} on {Describe(connection)} for {what}";
        if (ex is PostgresException pg)
        {
            if (pg.SqlState is PostgresErrorCodes.QueryCanceled or PostgresErrorCodes.LockNotAvailable)
            {
                // statement_timeout or lock_timeout: the server cancelled the statement.
                return new RotatorException(RotatorFailure.Unreachable,
                    $"{prefix} failed: the statement timed out on the server, nothing was changed (another session may hold a lock on the role): {pg.MessageText} ({pg.SqlState})",
                    ex, RotatorEffect.Refused);
            }
            var failure = pg.SqlState switch
            {
                PostgresErrorCodes.InsufficientPrivilege => RotatorFailure.AdminRefused,
                PostgresErrorCodes.UndefinedObject => RotatorFailure.AccountNotFound,
                // What passwordcheck and other check_password_hook modules raise.
                PostgresErrorCodes.InvalidParameterValue => RotatorFailure.PasswordRejected,
                _ when IsUnavailable(pg.SqlState) => RotatorFailure.Unreachable,
                _ => RotatorFailure.Other,
            };
            // The server answered with an error: the statement (autocommit, or its transaction) was rolled back.
            return new RotatorException(failure, $"{prefix} failed: {pg.MessageText} ({pg.SqlState})", ex, RotatorEffect.Refused);
        }
        // The connection broke mid-statement (or the driver gave up waiting): whether the server applied it is unknown.
        return IsNetwork(ex)
            ? new RotatorException(RotatorFailure.Unreachable, $"{prefix} failed, connection lost: {NetworkReason(ex)}", ex, RotatorEffect.Unknown)
            : new RotatorException(RotatorFailure.Other, $"{prefix} failed: {ex.Message}", ex, RotatorEffect.Unknown);
    }

    public static LoginCheck LoginOutcome(TargetConnection connection, NpgsqlException ex)
    {
        if (ex is PostgresException pg)
        {
            return pg.SqlState switch
            {
                PostgresErrorCodes.InvalidPassword => new LoginCheck(Rotators.LoginOutcome.Refused, $"password authentication failed ({pg.SqlState})"),
                // NOLOGIN roles, no pg_hba.conf entry.
                PostgresErrorCodes.InvalidAuthorizationSpecification => new LoginCheck(Rotators.LoginOutcome.Refused, $"{pg.MessageText} ({pg.SqlState})"),
                // Authenticated, but may not connect to the database (no CONNECT privilege).
                PostgresErrorCodes.InsufficientPrivilege => new LoginCheck(Rotators.LoginOutcome.Refused, $"{pg.MessageText} ({pg.SqlState})"),
                _ when IsUnavailable(pg.SqlState) => new LoginCheck(Rotators.LoginOutcome.Unreachable, $"{pg.MessageText} ({pg.SqlState})"),
                _ => throw new RotatorException(RotatorFailure.Other, $"verify login on {Describe(connection)}: {pg.MessageText} ({pg.SqlState})", ex),
            };
        }
        if (IsNetwork(ex))
        {
            return new LoginCheck(Rotators.LoginOutcome.Unreachable, NetworkReason(ex));
        }
        throw new RotatorException(RotatorFailure.Other, $"verify login on {Describe(connection)}: {ex.Message}", ex);
    }

    /// <summary>Server up but not taking connections now: starting, shutting down, out of slots or resources.</summary>
    private static bool IsUnavailable(string sqlState) =>
        sqlState is PostgresErrorCodes.CannotConnectNow or PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown
            || sqlState.StartsWith("08", StringComparison.Ordinal) // connection_exception
            || sqlState.StartsWith("53", StringComparison.Ordinal); // insufficient_resources, incl. too_many_connections

    private static bool IsNetwork(NpgsqlException ex) =>
        ex.InnerException is SocketException or IOException or TimeoutException || ex.IsTransient;

    private static string NetworkReason(NpgsqlException ex) => ex.InnerException switch
    {
        SocketException socket => $"{socket.SocketErrorCode}: {socket.Message}",
        TimeoutException => "timed out",
        IOException io => io.Message,
        _ => ex.Message,
    };
}
