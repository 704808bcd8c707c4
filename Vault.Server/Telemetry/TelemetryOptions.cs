namespace Vault.Server.Telemetry;

/// <summary>Telemetry settings, filled from the host's options (<c>Vault:MetricsListen</c>, <c>Vault:MetricsTokenFile</c>).</summary>
public sealed class TelemetryOptions
{
    /// <summary><c>HOST:PORT</c> of the Prometheus scrape endpoint's own listener; unset: no listener.</summary>
    public string? MetricsListen { get; set; }

    /// <summary>A file holding the bearer token a scrape must present; unset: none needed.</summary>
    public string? MetricsTokenFile { get; set; }
}
