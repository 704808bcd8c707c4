namespace Vault.Server.Telemetry.Events;

/// <summary>Security event settings, bound from <c>Vault:Events</c>; the host adds where the spool lives.</summary>
public sealed class EventOptions
{
    public const string Section = "Vault:Events";

    /// <summary>The outbound webhook; none unless its <see cref="WebhookOptions.Url"/> is set.</summary>
    public WebhookOptions Webhook { get; set; } = new();

    /// <summary>The webhook's durable spool (the host's is <c>DATA_DIR/events</c>): one file per event not yet delivered.</summary>
    public string SpoolDirectory { get; set; } = "";
}

/// <summary>The webhook sink, <c>Vault:Events:Webhook</c>. Checked at start-up (<see cref="WebhookDelivery"/>): a bad value stops the server with one line naming it.</summary>
public sealed class WebhookOptions
{
    /// <summary>Where events are POSTed: an absolute http:// or https:// URL. Unset: no webhook.</summary>
    public string? Url { get; set; }

    /// <summary>A file holding the HMAC-SHA256 key the bodies are signed with (its text, trimmed, as UTF-8; at least 16 characters). Required with <see cref="Url"/>.</summary>
    public string? SecretFile { get; set; }

    /// <summary>The first retry of a failed delivery waits about this long, doubling per failure up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan MinBackoff { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between two attempts (jitter takes up to half of it off).</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long one delivery may take before it counts as failed.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The most events the spool holds; beyond it the oldest is dropped (logged and counted), so a dead receiver cannot fill the disk.</summary>
    public int MaxSpooled { get; set; } = 10_000;
}
