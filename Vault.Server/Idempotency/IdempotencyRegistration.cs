using Microsoft.Extensions.DependencyInjection;
using Vault.Server.Storage;

namespace Vault.Server.Idempotency;

public static class IdempotencyRegistration
{
    /// <summary>Writes a client may repeat under a key: the keyed calls, the reaper pass that forgets their answers, and the record they store.</summary>
    public static IServiceCollection AddVaultIdempotency(this IServiceCollection services)
    {
        services.AddSingleton<IdempotentWrites>();
        services.AddSingleton<IReaperPass>(sp => sp.GetRequiredService<IdempotentWrites>());
        return services.AddStoredDocuments(typeof(IdempotencyRecord));
    }
}
