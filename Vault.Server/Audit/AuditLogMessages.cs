using Microsoft.Extensions.Logging;

namespace Vault.Server.Audit;

internal static partial class AuditLogMessages
{
    [LoggerMessage(5003, LogLevel.Critical, "Audit log is missing entries {First}–{Last} (anchored in {File}); refusing requests until an operator acknowledges the gap")]
    public static partial void EntriesMissing(ILogger logger, ulong first, ulong last, string file);

    [LoggerMessage(5004, LogLevel.Warning, "Audit gap {First}–{Last} acknowledged by {Accessor}; the chain goes on")]
    public static partial void GapAcknowledged(ILogger logger, ulong first, ulong last, string accessor);

    [LoggerMessage(5005, LogLevel.Error, "Audit anchor for entry {Seq} could not be stored")]
    public static partial void AnchorFailed(ILogger logger, ulong seq, Exception exception);

    [LoggerMessage(5002, LogLevel.Warning, "Audit file {File} ended in an unfinished entry ({Bytes} bytes, never acknowledged); cut off")]
    public static partial void TornTailCut(ILogger logger, string file, long bytes);

    [LoggerMessage(5008, LogLevel.Critical, "Audit entries up to {Seq} were written but could not be made durable; failing closed")]
    public static partial void FlushFailed(ILogger logger, ulong seq, Exception exception);

    [LoggerMessage(5001, LogLevel.Critical, "Audit log cannot be written; failing closed for {Count} requests")]
    public static partial void AppendFailed(ILogger logger, int count, Exception exception);
}
