using Microsoft.Extensions.DependencyInjection;
using Vault.Server.Storage;

namespace Vault.Server.Leases;

public static class LeaseRegistration
{
    /// <summary>The lease store, dynamic roles and their leases, check-out sets, static leases, the lifecycle every lease shares, the reaper, and the records they store.</summary>
    public static IServiceCollection AddVaultLeases(this IServiceCollection services)
    {
        services.AddOptions<LeaseOptions>().ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<LeaseStore>();
        services.AddSingleton<DynamicRoles>();
        services.AddSingleton<DynamicLeases>();
        services.AddSingleton<CheckoutSets>();
        services.AddSingleton<StaticLeases>();
        services.AddSingleton<LeaseLifecycle>();
        services.AddSingleton<TargetLeaseRules>();
        services.AddSingleton<LeaseReaper>();
        services.AddHostedService(sp => sp.GetRequiredService<LeaseReaper>());
        services.AddHostedService<LeaseMetrics>();
        return services.AddStoredDocuments(typeof(DynamicRoleRecord), typeof(LeaseRecord), typeof(CheckoutSetRecord));
    }
}
