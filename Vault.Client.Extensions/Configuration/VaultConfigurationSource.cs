using Microsoft.Extensions.Configuration;

namespace Vault.Client.Extensions.Configuration;

/// <summary>The <see cref="IConfigurationSource"/> behind <c>AddVault</c>.</summary>
/// <param name="client">A client to read with; null creates one from <see cref="VaultConfigurationOptions.Client"/> (disposed with the configuration).</param>
/// <param name="options">The secrets and the reload interval.</param>
public sealed class VaultConfigurationSource(VaultClient? client, VaultConfigurationOptions options) : IConfigurationSource
{
    /// <summary>The secrets and the reload interval.</summary>
    public VaultConfigurationOptions Options { get; } = options;

    /// <summary>Creates the provider.</summary>
    /// <param name="builder">The configuration builder (unused: the source needs nothing from the other sources).</param>
    /// <returns>A <see cref="VaultConfigurationProvider"/>.</returns>
    public IConfigurationProvider Build(IConfigurationBuilder builder) =>
        client is not null
            ? new VaultConfigurationProvider(client, ownsClient: false, Options)
            : new VaultConfigurationProvider(new VaultClient(Options.Client), ownsClient: true, Options);
}
