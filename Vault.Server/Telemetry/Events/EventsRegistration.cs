using Microsoft.Extensions.DependencyInjection;

namespace Vault.Server.Telemetry.Events;

/// <summary>Registers security events: the hub, their sources, the webhook's spool and its delivery worker.</summary>
public static class EventsRegistration
{
    /// <remarks>The host fills <see cref="EventOptions"/> (bound from <c>Vault:Events</c>, the spool under the data directory).</remarks>
    public static IServiceCollection AddVaultEvents(this IServiceCollection services)
    {
        services.AddSingleton<EventSpool>();
        services.AddSingleton<SecurityEvents>();
        services.AddHostedService<EventSources>();
        services.AddHostedService<WebhookDelivery>();
        return services;
    }
}
