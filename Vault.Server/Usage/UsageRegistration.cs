using Microsoft.Extensions.DependencyInjection;
using Vault.Server.Storage;

namespace Vault.Server.Usage;

public static class UsageRegistration
{
    /// <summary>Last-use tracking (persisted by the reaper's passes and at shutdown), the credential report, and the records they store.</summary>
    public static IServiceCollection AddVaultUsage(this IServiceCollection services)
    {
        services.AddSingleton<UsageTracker>();
        services.AddSingleton<IReaperPass>(sp => sp.GetRequiredService<UsageTracker>());
        services.AddHostedService(sp => sp.GetRequiredService<UsageTracker>());
        services.AddSingleton<CredentialReports>();
        return services.AddStoredDocuments(typeof(UsageRecord), typeof(UsageSinceRecord));
    }
}
