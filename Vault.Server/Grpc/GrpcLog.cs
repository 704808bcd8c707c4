using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Vault.Server.Grpc;

internal static partial class GrpcLog
{
    [LoggerMessage(4001, LogLevel.Error, "{Method} failed with {StatusCode}")]
    public static partial void RequestFailed(ILogger logger, string method, StatusCode statusCode, Exception exception);
}
