using Microsoft.Extensions.Logging;

namespace Vault.Server.Leases;

/// <summary>Lease log messages (event ids 3100–3199). Lease ids and user names only — never a password.</summary>
internal static partial class LeaseLog
{
    [LoggerMessage(3101, LogLevel.Information, "Issued lease {LeaseId} ({Username}) on {Target}, expires {ExpiresAt:O}")]
    public static partial void Issued(ILogger logger, string leaseId, string username, string target, DateTimeOffset expiresAt);

    [LoggerMessage(3102, LogLevel.Information, "Revoked lease {LeaseId} ({Username}): {Why}")]
    public static partial void Revoked(ILogger logger, string leaseId, string username, string why);

    [LoggerMessage(3103, LogLevel.Warning, "Revoking lease {LeaseId} failed (attempt {Attempt}): {Reason}; retry in {RetrySeconds} s")]
    public static partial void RevokeFailed(ILogger logger, string leaseId, int attempt, string reason, long retrySeconds);

    [LoggerMessage(3104, LogLevel.Error, "Lease {LeaseId} is IRREVOCABLE after {Attempts} attempts: drop user {Username} on {Target} by hand ({Reason})")]
    public static partial void Irrevocable(ILogger logger, string leaseId, int attempts, string username, string target, string reason);

    [LoggerMessage(3105, LogLevel.Error, "Lease reaper pass failed")]
    public static partial void ReaperFailed(ILogger logger, Exception exception);

    [LoggerMessage(3106, LogLevel.Debug, "Leased the static credential of {Target} ({Username}) as {LeaseId}, expires {ExpiresAt:O}")]
    public static partial void StaticIssued(ILogger logger, string leaseId, string username, string target, DateTimeOffset expiresAt);

    [LoggerMessage(3107, LogLevel.Debug, "Static lease {LeaseId} ended: {Why}")]
    public static partial void StaticEnded(ILogger logger, string leaseId, string why);
}
