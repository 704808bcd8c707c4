using Microsoft.Extensions.DependencyInjection;
using Vault.Server.Storage;

namespace Vault.Server.Auth;

public static class AuthRegistration
{
    /// <summary>Tokens, policies, AppRole login and its throttle, and the records they store.</summary>
    public static IServiceCollection AddVaultAuth(this IServiceCollection services)
    {
        services.AddSingleton<PolicyStore>();
        services.AddSingleton<TokenManager>();
        services.AddSingleton<RootGenerator>();
        services.AddSingleton<IReaperPass, TokenTidy>();
        services.AddSingleton<LoginThrottle>();
        services.AddSingleton<AppRoleManager>();
        return services.AddStoredDocuments(
            typeof(TokenRecord), typeof(TokenAccessorRecord), typeof(TokenChildRecord), typeof(PolicyRecord),
            typeof(AppRoleRecord), typeof(AppRoleIdRecord), typeof(SecretIdRecord));
    }
}
