using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;

namespace Vault.Server.Telemetry;

/// <summary>
/// Registers the telemetry area: the vault's instruments, the scrape listener, and — only when
/// there is a listener — the OpenTelemetry meter provider with its Prometheus exporter. Without one
/// nothing listens to the instruments, and recording a measurement costs next to nothing.
/// </summary>
public static class TelemetryRegistration
{
    /// <param name="export">Whether metrics are exported (a scrape listener is configured).</param>
    public static IServiceCollection AddVaultTelemetry(this IServiceCollection services, bool export)
    {
        services.AddMetrics();
        services.AddSingleton<VaultMetrics>();
        services.AddSingleton<MetricsInterceptor>();
        if (export)
        {
            services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(VaultMetrics.MeterName).AddPrometheusExporter(prometheus =>
                // Every scrape reads the state as it is (the exporter would otherwise answer from a 300 ms cache).
                prometheus.ScrapeResponseCacheDurationMilliseconds = 0));
        }
        services.AddSingleton<MetricsListener>();
        services.AddHostedService(provider => provider.GetRequiredService<MetricsListener>());
        return services;
    }
}
