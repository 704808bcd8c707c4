using Microsoft.Extensions.Logging;

namespace Vault.Server.Rotation;

/// <summary>Rotation log messages (event ids 3000–3099). Names, steps, versions and reasons only — never a password.</summary>
internal static partial class RotationLog
{
    [LoggerMessage(3001, LogLevel.Information, "Rotated {Target} ({Account}) to version {Version} in {ElapsedMs} ms ({Trigger})")]
    public static partial void Rotated(ILogger logger, string target, string account, long version, long elapsedMs, string trigger);

    [LoggerMessage(3002, LogLevel.Warning, "Rotation of {Target} failed at {Step} ({Trigger}): {Reason}; retry in {RetrySeconds} s")]
    public static partial void RotationFailed(ILogger logger, string target, string step, string trigger, string reason, long retrySeconds);

    [LoggerMessage(3003, LogLevel.Information, "Reconciled {Target} after an interrupted rotation: {Outcome}")]
    public static partial void Reconciled(ILogger logger, string target, string outcome);

    [LoggerMessage(3004, LogLevel.Error, "Target {Target} NEEDS ATTENTION: neither its current nor its pending password logs in ({Reason})")]
    public static partial void NeedsAttention(ILogger logger, string target, string reason);

    [LoggerMessage(3005, LogLevel.Warning, "Target {Target} has DRIFTED: its current password was refused ({Reason})")]
    public static partial void Drifted(ILogger logger, string target, string reason);

    [LoggerMessage(3006, LogLevel.Information, "Target {Target} no longer drifted: its current password logs in again")]
    public static partial void DriftCleared(ILogger logger, string target);

    [LoggerMessage(3007, LogLevel.Warning, "Rotation of {Target} halted after {Step} (Vault:Rotation:HaltAfterStep)")]
    public static partial void HaltedAfterStep(ILogger logger, string target, string step);

    [LoggerMessage(3008, LogLevel.Error, "Rotation of {Target} hit an unexpected {ExceptionType} at {Step} (its message is not logged: it may quote a statement)")]
    public static partial void Unexpected(ILogger logger, string target, string step, string exceptionType);

    [LoggerMessage(3009, LogLevel.Information, "Reconciling {Count} target(s) caught mid-rotation")]
    public static partial void ReconcilingAtStartup(ILogger logger, int count);

    [LoggerMessage(3011, LogLevel.Information, "Reconciling {Target}: waiting {WaitMs} ms for admin statements an earlier run may have left on the system to end (statement timeout)")]
    public static partial void WaitingForStrayStatements(ILogger logger, string target, long waitMs);

    [LoggerMessage(3010, LogLevel.Error, "Rotation scheduler pass failed")]
    public static partial void SchedulerFailed(ILogger logger, Exception exception);
}
