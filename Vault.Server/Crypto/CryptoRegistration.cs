using Microsoft.Extensions.DependencyInjection;
using Vault.Server.Storage;

namespace Vault.Server.Crypto;

public static class CryptoRegistration
{
    /// <summary>The security barrier (seal state, keyring, envelope encryption) and the keyring it stores.</summary>
    public static IServiceCollection AddVaultBarrier(this IServiceCollection services)
    {
        services.AddSingleton(sp =>
        {
            var store = sp.GetRequiredService<IVaultStore>();
            var barrier = ActivatorUtilities.CreateInstance<SecurityBarrier>(sp, store);
            // A standby follows the keyring the active node changes.
            store.ChangedElsewhere += barrier.OnChangedElsewhere;
            return barrier;
        });
        return services.AddStoredDocuments(typeof(KeyringRecord));
    }
}
