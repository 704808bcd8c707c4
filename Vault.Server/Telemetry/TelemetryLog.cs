using Microsoft.Extensions.Logging;

namespace Vault.Server.Telemetry;

/// <summary>Log events of the telemetry area (ids 6100–6199).</summary>
internal static partial class TelemetryLog
{
    [LoggerMessage(EventId = 6100, Level = LogLevel.Information, Message = "Metrics for Prometheus at {Address}/metrics (token required: {TokenRequired})")]
    public static partial void MetricsListening(ILogger logger, string address, bool tokenRequired);
}
