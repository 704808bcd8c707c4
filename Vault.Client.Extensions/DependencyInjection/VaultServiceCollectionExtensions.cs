using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Vault.Client;
using Vault.Client.Extensions.DependencyInjection;

// Extension methods live in the namespace of the type they extend, so they show up without a using.
namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a <see cref="VaultClient"/> for dependency injection.</summary>
public static class VaultServiceCollectionExtensions
{
    /// <summary>
    /// Registers one <see cref="VaultClient"/> (a singleton: it shares one channel) with
    /// <see cref="VaultClientOptions"/> bound from <paramref name="configuration"/> — e.g. the section
    /// <c>Vault</c> with <c>Address</c>, <c>Token</c> or <c>RoleId</c> and <c>SecretId</c>,
    /// <c>CaCertificateFile</c>, <c>ConnectTimeout</c>, <c>Timeout</c> — and validated when the host starts.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The configuration section holding the client's options.</param>
    /// <returns>The service collection, for chaining.</returns>
    public static IServiceCollection AddVaultClient(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<VaultClientOptions>().Bind(configuration);
        return AddVaultClientCore(services);
    }

    /// <summary>As <see cref="AddVaultClient(IServiceCollection, IConfiguration)"/>, with the options set in code.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the client's options.</param>
    /// <returns>The service collection, for chaining.</returns>
    public static IServiceCollection AddVaultClient(this IServiceCollection services, Action<VaultClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<VaultClientOptions>().Configure(configure);
        return AddVaultClientCore(services);
    }

    private static IServiceCollection AddVaultClientCore(IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<VaultClientOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<VaultClientOptions>, VaultClientOptionsValidator>());
        services.TryAddSingleton(provider => new VaultClient(
            provider.GetRequiredService<IOptions<VaultClientOptions>>().Value,
            provider.GetService<ILoggerFactory>()));
        return services;
    }
}
