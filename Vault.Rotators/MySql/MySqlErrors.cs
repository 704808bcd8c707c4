using System.Net.Sockets;
using MySqlConnector;

namespace Vault.Rotators.MySql;

/// <summary>
/// Turns MySqlConnector failures into <see cref="RotatorFailure"/>s.
/// </summary>
/// <remarks>
/// Errors raised by a statement that carries a password or its hash are described by their error
/// numbers only, and the driver exception is not attached: servers quote the statement in some
/// messages ("... near '...' at line 1"), and the caller logs inner exceptions. Errors from logging
/// in carry no SQL and keep the driver exception.
/// </remarks>
internal static class MySqlErrors
{
    // Server error numbers (MariaDB and MySQL share them unless noted).
    public const int DbAccessDenied = 1044;
    public const int AccessDenied = 1045;
    public const int ConnectionCount = 1040;
    public const int UnableToConnect = 1042;
    public const int ServerShutdown = 1053;
    public const int NoSuchThread = 1094;
    public const int HostIsBlocked = 1129;
    public const int HostNotPrivileged = 1130;
    public const int PasswordNotAllowed = 1132;
    public const int TableAccessDenied = 1142;
    public const int SpecificAccessDenied = 1227;
    public const int OptionPreventsStatement = 1290;
    public const int CannotUser = 1396;
    public const int CannotCreateUserWithGrant = 1410;
    public const int NotValidPassword = 1819;
    public const int MustChangePassword = 1820;
    public const int MustChangePasswordLogin = 1862;
    public const int AccessDeniedNoPassword = 1698;
    public const int MySqlAccountLocked = 3118;
    public const int MariaDbAccountLocked = 4151;
    public const int LockWaitTimeout = 1205;
    public const int MariaDbStatementTimeout = 1969;
    public const int MySqlExecutionTimeout = 3024;

    public static string Describe(TargetConnection connection) =>
        $"mysql {connection.Host}:{(connection.Port == 0 ? MySqlRotator.DefaultPort : connection.Port)}";

    public static bool IsUnreachable(MySqlException ex) =>
        ex.Number is UnableToConnect or ConnectionCount or ServerShutdown or HostIsBlocked
            || ex.InnerException is SocketException or IOException or TimeoutException
            || ex.IsTransient;

    /// <summary>The connection broke, or the driver stopped waiting, after a statement was sent: the server may still apply it.</summary>
    public static bool IsConnectionLost(MySqlException ex) =>
        ex.InnerException is SocketException or IOException or TimeoutException
            || ex.ErrorCode is MySqlErrorCode.CommandTimeoutExpired or MySqlErrorCode.UnableToConnectToHost;

    /// <summary>The admin session could not be opened and set up: no statement of the step was sent.</summary>
    public static RotatorException AdminConnectFailed(string step, TargetConnection connection, MySqlException ex)
    {
        const RotatorEffect notSent = RotatorEffect.NotSent;
        var prefix = $"{step} on {Describe(connection)}: admin login";
        return ex.Number switch
        {
            AccessDenied or AccessDeniedNoPassword or DbAccessDenied or HostNotPrivileged or MySqlAccountLocked or MariaDbAccountLocked
                or MustChangePassword or MustChangePasswordLogin =>
                new RotatorException(RotatorFailure.AdminRefused, $"{prefix} refused: {ex.Message} ({ex.Number})", ex, notSent),
            _ when IsUnreachable(ex) => new RotatorException(RotatorFailure.Unreachable, $"{prefix} failed, server unreachable: {ex.Message} ({ex.Number})", ex, notSent),
            _ => new RotatorException(RotatorFailure.Other, $"{prefix} failed: {ex.Message} ({ex.Number})", ex, notSent),
        };
    }

    public static LoginCheck LoginOutcome(TargetConnection connection, MySqlException ex) => ex.Number switch
    {
        AccessDenied or AccessDeniedNoPassword => new LoginCheck(Rotators.LoginOutcome.Refused, $"access denied ({ex.Number})"),
        DbAccessDenied => new LoginCheck(Rotators.LoginOutcome.Refused, $"access to the database denied ({ex.Number})"),
        HostNotPrivileged => new LoginCheck(Rotators.LoginOutcome.Refused, $"the account may not connect from this host ({ex.Number})"),
        MySqlAccountLocked or MariaDbAccountLocked => new LoginCheck(Rotators.LoginOutcome.Refused, $"the account is locked ({ex.Number})"),
        MustChangePassword or MustChangePasswordLogin => new LoginCheck(Rotators.LoginOutcome.Refused, $"the password has expired ({ex.Number})"),
        _ when IsUnreachable(ex) => new LoginCheck(Rotators.LoginOutcome.Unreachable, $"{ex.Message} ({ex.Number})"),
        _ => throw new RotatorException(RotatorFailure.Other, $"verify login on {Describe(connection)}: {ex.Message} ({ex.Number})", ex),
    };

    /// <summary>A failed statement that carried a password or hash.</summary>
    /// <param name="codes">The error number and, on MariaDB, the numbers <c>SHOW WARNINGS</c> listed with it (MariaDB reports 1396 and puts the cause there).</param>
    /// <param name="policyMessages">Password-policy explanations from the server, already checked not to quote a secret.</param>
    /// <param name="creating">The statement creates the account, so 1396 means it exists already.</param>
    public static RotatorException StatementFailed(string step, TargetConnection connection, string what, MySqlException ex, IReadOnlyCollection<int> codes, IReadOnlyList<string> policyMessages, bool creating = false)
    {
        var prefix = $"{step} on {Describe(connection)} for {what}";
        var numbers = string.Join(", ", codes);
        const RotatorEffect refused = RotatorEffect.Refused;
        if (IsConnectionLost(ex))
        {
            // The connection broke mid-statement: whether the server applied it is unknown.
            return new RotatorException(RotatorFailure.Unreachable, $"{prefix} failed, connection lost (errors {numbers})", effect: RotatorEffect.Unknown);
        }
        if (codes.Contains(MariaDbStatementTimeout) || codes.Contains(LockWaitTimeout) || codes.Contains(MySqlExecutionTimeout))
        {
            return new RotatorException(RotatorFailure.Unreachable,
                $"{prefix} failed: the statement timed out on the server, nothing was changed (another session may hold a lock on the account tables) (errors {numbers})",
                effect: refused);
        }
        if (codes.Contains(NotValidPassword))
        {
            var why = policyMessages.Count > 0 ? string.Join("; ", policyMessages) : "the password does not satisfy the server's password policy";
            return new RotatorException(RotatorFailure.PasswordRejected, $"{prefix} failed: {why} (errors {numbers})");
        }
        if (IsUnreachable(ex))
        {
            // E.g. the server shutting down: the answer came, but say nothing of what it kept.
            return new RotatorException(RotatorFailure.Unreachable, $"{prefix} failed, server going away (errors {numbers})", effect: RotatorEffect.Unknown);
        }
        if (codes.Contains(SpecificAccessDenied) || codes.Contains(AccessDenied) || codes.Contains(DbAccessDenied)
            || codes.Contains(TableAccessDenied) || codes.Contains(PasswordNotAllowed))
        {
            return new RotatorException(RotatorFailure.AdminRefused, $"{prefix} failed: the admin lacks the privilege (errors {numbers})");
        }
        if (codes.Contains(OptionPreventsStatement))
        {
            return new RotatorException(RotatorFailure.Other, effect: refused, message: $"{prefix} failed: the server's options prevent the statement, e.g. strict_password_validation refusing a pre-hashed password (errors {numbers}); option plaintext_fallback=true sends the plaintext instead, which MariaDB's general log then holds");
        }
        if (creating && ex.Number == CannotUser)
        {
            return new RotatorException(RotatorFailure.Other, $"{prefix} failed: the account already exists (errors {numbers})", effect: refused);
        }
        if (codes.Contains(CannotCreateUserWithGrant) || ex.Number == CannotUser)
        {
            return new RotatorException(RotatorFailure.AccountNotFound, $"{prefix} failed: the account does not exist (errors {numbers})");
        }
        // The server answered with an error: the statement did nothing.
        return new RotatorException(RotatorFailure.Other, $"{prefix} failed with server errors {numbers}", effect: refused);
    }
}
