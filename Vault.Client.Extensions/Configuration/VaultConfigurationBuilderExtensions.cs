using Vault.Client;
using Vault.Client.Extensions.Configuration;

// Extension methods live in the namespace of the type they extend, so they show up without a using.
namespace Microsoft.Extensions.Configuration;

/// <summary>Adds KV secrets from the vault to a configuration.</summary>
public static class VaultConfigurationBuilderExtensions
{
    /// <summary>
    /// Adds KV secrets as configuration keys, re-read every <see cref="VaultConfigurationOptions.ReloadInterval"/>:
    /// <c>builder.Configuration.AddVault(o => o.Map("apps/billing/db", "Database"))</c> makes
    /// <c>Database:password</c> the field <c>password</c> of <c>apps/billing/db</c>. The client is
    /// created from <see cref="VaultConfigurationOptions.Client"/> (by default <c>VAULT_ADDR</c>,
    /// <c>VAULT_TOKEN</c>, <c>VAULT_CACERT</c>).
    /// </summary>
    /// <param name="builder">The configuration builder.</param>
    /// <param name="configure">Maps the secrets; may change the client settings and the interval.</param>
    /// <returns>The builder, for chaining.</returns>
    public static IConfigurationBuilder AddVault(this IConfigurationBuilder builder, Action<VaultConfigurationOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new VaultConfigurationOptions();
        configure(options);
        return builder.Add(new VaultConfigurationSource(client: null, options));
    }

    /// <summary>As <see cref="AddVault(IConfigurationBuilder, Action{VaultConfigurationOptions})"/>, reading with an existing client (not disposed with the configuration).</summary>
    /// <param name="builder">The configuration builder.</param>
    /// <param name="client">The client to read with.</param>
    /// <param name="configure">Maps the secrets; may change the interval.</param>
    /// <returns>The builder, for chaining.</returns>
    public static IConfigurationBuilder AddVault(this IConfigurationBuilder builder, VaultClient client, Action<VaultConfigurationOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new VaultConfigurationOptions();
        configure(options);
        return builder.Add(new VaultConfigurationSource(client, options));
    }
}
