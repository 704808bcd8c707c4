using Microsoft.Extensions.Logging;

namespace Vault.Server.Storage;

internal static partial class StoreLog
{
    [LoggerMessage(1001, LogLevel.Error, "Store batch of {Count} writes failed; none applied")]
    public static partial void BatchFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(1002, LogLevel.Error, "Store rollback failed")]
    public static partial void RollbackFailed(ILogger logger, Exception exception);

    [LoggerMessage(1004, LogLevel.Critical, "Storage could not make committed writes durable; refusing further writes until restart")]
    public static partial void DurabilityLost(ILogger logger, Exception exception);

    [LoggerMessage(1003, LogLevel.Trace, "Committed {Count} writes in {ElapsedMs} ms")]
    public static partial void BatchCommitted(ILogger logger, int count, double elapsedMs);

    [LoggerMessage(1005, LogLevel.Information, "Replayed {Changes} changes from the write-ahead log into the data file")]
    public static partial void Replayed(ILogger logger, long changes);

    [LoggerMessage(1006, LogLevel.Warning, "Write-ahead log ended in {Bytes} bytes of an unfinished commit (never acknowledged); ignored")]
    public static partial void TornTail(ILogger logger, long bytes);

    [LoggerMessage(1007, LogLevel.Trace, "Applied {Count} changes to the data file in {ElapsedMs} ms")]
    public static partial void Applied(ILogger logger, int count, double elapsedMs);

    [LoggerMessage(1008, LogLevel.Warning, "Data file compares names as {Collation}; rebuilding it so names compare as exact strings")]
    public static partial void MigratingCollation(ILogger logger, string collation);

    [LoggerMessage(1009, LogLevel.Information, "Data file rebuilt: names now compare as exact strings")]
    public static partial void MigratedCollation(ILogger logger);

    [LoggerMessage(1010, LogLevel.Critical, "Disk full in {Directory}: gave up the {ReservedBytes} reserved bytes so refusals can be audited; refusing writes until space is freed")]
    public static partial void DiskFull(ILogger logger, string directory, long reservedBytes, Exception exception);

    [LoggerMessage(1011, LogLevel.Warning, "Disk space in {Directory} is back: reserve set aside again, taking writes")]
    public static partial void DiskRecovered(ILogger logger, string directory);

    [LoggerMessage(1012, LogLevel.Error, "Not moving acknowledged writes into the data file: the disk has no room for them; they stay in memory and in the write-ahead log until space is freed")]
    public static partial void ApplyDeferred(ILogger logger, Exception exception);
}
