using Microsoft.Extensions.Logging;

namespace Vault.Server.Telemetry.Events;

/// <summary>Log events of security events and the webhook (ids 6150–6169, in the telemetry area's range). Ids and types, never a key or body.</summary>
internal static partial class EventLog
{
    [LoggerMessage(EventId = 6150, Level = LogLevel.Debug, Message = "Security event {Type} {EventId}")]
    public static partial void Published(ILogger logger, string type, string eventId);

    [LoggerMessage(EventId = 6151, Level = LogLevel.Information, Message = "Security events go to the webhook {Url} ({Spooled} waiting in the spool {Directory})")]
    public static partial void WebhookStarted(ILogger logger, string url, int spooled, string directory);

    [LoggerMessage(EventId = 6152, Level = LogLevel.Debug, Message = "Delivered event {EventId} to the webhook (HTTP {Status})")]
    public static partial void Delivered(ILogger logger, string eventId, int status);

    [LoggerMessage(EventId = 6153, Level = LogLevel.Warning, Message = "Delivering event {EventId} to the webhook failed (attempt {Attempt}): {Reason}; next attempt in {RetryMs} ms")]
    public static partial void DeliveryFailed(ILogger logger, string eventId, int attempt, string reason, long retryMs);

    [LoggerMessage(EventId = 6154, Level = LogLevel.Error, Message = "The event spool is full ({Max} events): dropped the oldest, {EventId}")]
    public static partial void SpoolFull(ILogger logger, int max, string eventId);

    [LoggerMessage(EventId = 6155, Level = LogLevel.Error, Message = "Event {EventId} ({Type}) could not be spooled for the webhook: {Reason}")]
    public static partial void NotSpooled(ILogger logger, string eventId, string type, string reason);

    [LoggerMessage(EventId = 6156, Level = LogLevel.Error, Message = "Spooled event file {File} cannot be read, set aside as {File}.bad: {Reason}")]
    public static partial void Unreadable(ILogger logger, string file, string reason);

    [LoggerMessage(EventId = 6157, Level = LogLevel.Error, Message = "The webhook delivery worker failed; it tries again in {RetryMs} ms")]
    public static partial void WorkerFailed(ILogger logger, long retryMs, Exception exception);
}
