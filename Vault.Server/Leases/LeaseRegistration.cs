using Microsoft.Extensions.DependencyInjection;
using Vault.Server.Storage;

namespace Vault.Server.Leases;

public static class LeaseRegistration
{
    /// <summary>Dynamic roles, leases, check-out sets, the reaper, and the records they store.</summary>
    public static IServiceCollection AddVaultLeases(this IServiceCollection services)
    {
        services.AddOptions<LeaseOptions>().ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<LeaseStore>();
        services.AddSingleton<LeaseManager>();
        services.AddSingleton<TargetLeaseRules>();
        services.AddSingleton<LeaseReaper>();
        services.AddHostedService(sp => sp.GetRequiredService<LeaseReaper>());
        return services.AddStoredDocuments(typeof(DynamicRoleRecord), typeof(LeaseRecord), typeof(CheckoutSetRecord));
    }
}
