using Microsoft.Extensions.DependencyInjection;
using Vault.Server.Auth;
using Vault.Server.Storage;

namespace Vault.Server.Identity;

public static class IdentityRegistration
{
    /// <summary>People: entities and groups, userpass login with its password hashing, TOTP MFA, just-in-time access requests, and the records they store.</summary>
    public static IServiceCollection AddVaultIdentity(this IServiceCollection services)
    {
        services.AddSingleton<Identities>();
        services.AddSingleton<IEntityPolicies>(sp => sp.GetRequiredService<Identities>());
        services.AddSingleton<PasswordHasher>();
        services.AddSingleton<UserpassManager>();
        services.AddSingleton<MfaManager>();
        services.AddSingleton<AccessRequests>();
        services.AddHostedService<IdentityMetrics>();
        services.AddSingleton<LdapLogin>();
        services.AddSingleton<IReaperPass>(sp => sp.GetRequiredService<AccessRequests>());
        return services.AddStoredDocuments(typeof(EntityRecord), typeof(GroupRecord), typeof(UserpassUserRecord), typeof(MfaRecord), typeof(UserpassConfigRecord), typeof(LdapConfigRecord), typeof(GrantRecord), typeof(AccessRequestRecord), typeof(OpenRequestRecord));
    }
}
