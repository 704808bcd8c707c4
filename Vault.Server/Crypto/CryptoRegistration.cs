using Microsoft.Extensions.DependencyInjection;
using Vault.Server.Storage;

namespace Vault.Server.Crypto;

public static class CryptoRegistration
{
    /// <summary>The security barrier (seal state, keyring, envelope encryption) and the keyring it stores.</summary>
    public static IServiceCollection AddVaultBarrier(this IServiceCollection services)
    {
        services.AddSingleton<SecurityBarrier>();
        return services.AddStoredDocuments(typeof(KeyringRecord));
    }
}
