using Microsoft.Extensions.Logging;

namespace Vault.Server.Usage;

internal static partial class UsageLog
{
    [LoggerMessage(EventId = 1301, Level = LogLevel.Warning, Message = "Last uses could not be stored at shutdown; the report may show those items as older than they are")]
    public static partial void FlushFailed(ILogger logger, Exception exception);
}
