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
}
