using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;

namespace Vault.Server.Telemetry;

/// <summary>Registers the telemetry area: the vault's instruments, the OpenTelemetry meter provider with its Prometheus exporter, and the scrape listener.</summary>
public static class TelemetryRegistration
{
    public static IServiceCollection AddVaultTelemetry(this IServiceCollection services)
    {
        services.AddMetrics();
        services.AddSingleton<VaultMetrics>();
        services.AddSingleton<MetricsInterceptor>();
        services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(VaultMetrics.MeterName).AddPrometheusExporter());
        services.AddSingleton<MetricsListener>();
        services.AddHostedService(provider => provider.GetRequiredService<MetricsListener>());
        return services;
    }
}
