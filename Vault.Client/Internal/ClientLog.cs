using Grpc.Core;
using Microsoft.Extensions.Logging;
using Vault.Protocol.V1;

namespace Vault.Client.Internal;

/// <summary>
/// The client library's log lines, event ids in one place: 100x login, 110x leases, 120x credential
/// providers. Names, ids, status codes and times only — never a token, password or secret value.
/// </summary>
internal static partial class ClientLog
{
    [LoggerMessage(1001, LogLevel.Debug, "Logged in with AppRole as token {Accessor}, valid until {ExpiresAt:O}")]
    public static partial void LoggedIn(ILogger logger, string accessor, DateTimeOffset expiresAt);

    [LoggerMessage(1002, LogLevel.Debug, "Renewed token {Accessor} until {ExpiresAt:O}")]
    public static partial void TokenRenewed(ILogger logger, string accessor, DateTimeOffset expiresAt);

    [LoggerMessage(1003, LogLevel.Warning, "Could not renew token {Accessor} ({Code}: {Detail}); logging in again")]
    public static partial void TokenRenewFailed(ILogger logger, string accessor, StatusCode code, string detail);

    [LoggerMessage(1004, LogLevel.Warning, "AppRole login failed ({Code}: {Detail}); the current token is kept and the login retried")]
    public static partial void LoginFailed(ILogger logger, StatusCode code, string detail);

    [LoggerMessage(1101, LogLevel.Debug, "Lease {LeaseId} renewed until {ExpiresAt:O}")]
    public static partial void LeaseRenewed(ILogger logger, string leaseId, DateTimeOffset expiresAt);

    [LoggerMessage(1102, LogLevel.Warning, "Renewing lease {LeaseId} failed ({Code}: {Detail}); retrying in {Delay}")]
    public static partial void LeaseRenewRetrying(ILogger logger, string leaseId, StatusCode code, string detail, TimeSpan delay);

    [LoggerMessage(1103, LogLevel.Error, "Renewing lease {LeaseId} failed for good ({Code}: {Detail}); it ends at {ExpiresAt:O}")]
    public static partial void LeaseRenewFailed(ILogger logger, string leaseId, StatusCode code, string detail, DateTimeOffset expiresAt);

    [LoggerMessage(1104, LogLevel.Information, "Lease {LeaseId} reached its max TTL; it ends at {ExpiresAt:O}")]
    public static partial void LeaseAtMaxTtl(ILogger logger, string leaseId, DateTimeOffset expiresAt);

    [LoggerMessage(1105, LogLevel.Debug, "Lease {LeaseId} revoked ({State})")]
    public static partial void LeaseRevoked(ILogger logger, string leaseId, LeaseState state);

    [LoggerMessage(1106, LogLevel.Debug, "Lease {LeaseId} was already gone when disposed")]
    public static partial void LeaseAlreadyGone(ILogger logger, string leaseId);

    [LoggerMessage(1107, LogLevel.Warning, "Could not revoke lease {LeaseId} on dispose ({Code}: {Detail}); it ends on its own at {ExpiresAt:O}")]
    public static partial void LeaseRevokeFailed(ILogger logger, string leaseId, StatusCode code, string detail, DateTimeOffset expiresAt);

    [LoggerMessage(1108, LogLevel.Error, "A handler of lease {LeaseId} threw")]
    public static partial void LeaseHandlerFailed(ILogger logger, string leaseId, Exception exception);

    [LoggerMessage(1201, LogLevel.Information, "Credential source {Source} now uses user {Username}")]
    public static partial void CredentialSwitched(ILogger logger, string source, string username);

    [LoggerMessage(1202, LogLevel.Debug, "Credential source {Source}: user {Username} has a new password (version {Version})")]
    public static partial void CredentialPasswordChanged(ILogger logger, string source, string username, ulong version);

    [LoggerMessage(1203, LogLevel.Warning, "Credential source {Source} could not refresh ({Code}: {Detail}); retrying in {Delay}")]
    public static partial void CredentialRefreshFailed(ILogger logger, string source, StatusCode code, string detail, TimeSpan delay);

    [LoggerMessage(1204, LogLevel.Error, "A handler of credential source {Source} threw")]
    public static partial void CredentialHandlerFailed(ILogger logger, string source, Exception exception);

    [LoggerMessage(1205, LogLevel.Critical, "Credential source {Source} stopped refreshing: its loop failed")]
    public static partial void CredentialLoopFailed(ILogger logger, string source, Exception exception);
}
