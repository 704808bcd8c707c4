using Microsoft.Extensions.DependencyInjection;
using Vault.Server.Storage;

namespace Vault.Server.Secrets;

/// <summary>Limits of the versioned KV store. The host fills it from its configuration.</summary>
public sealed class KvOptions
{
    /// <summary>Largest accepted secret value (keys and values, UTF-8 bytes).</summary>
    public int MaxSecretBytes { get; set; } = 1024 * 1024;
}

public static class KvRegistration
{
    /// <summary>The versioned KV engine, the re-wrapping of its data keys after a key rotation, and the records it stores.</summary>
    public static IServiceCollection AddVaultKv(this IServiceCollection services)
    {
        services.AddOptions<KvOptions>();
        services.AddSingleton<KvEngine>();
        services.AddSingleton<RewrapService>();
        services.AddHostedService(sp => sp.GetRequiredService<RewrapService>());
        return services.AddStoredDocuments(typeof(SecretMetadataRecord), typeof(SecretVersionRecord));
    }
}
