namespace Vault.Client.Extensions.Configuration;

/// <summary>Which KV secrets <c>AddVault</c> exposes as configuration, and how often it re-reads them.</summary>
public sealed class VaultConfigurationOptions
{
    /// <summary>Connection settings for the client the provider creates when it is not given one.</summary>
    public VaultClientOptions Client { get; set; } = VaultClientOptions.FromEnvironment();

    /// <summary>The secrets to load, in order; a later secret's key wins over an earlier one's.</summary>
    public IList<VaultSecretMapping> Secrets { get; } = [];

    /// <summary>
    /// How often the secrets are re-read; when one has changed the configuration is updated and its
    /// reload token fires. Null or zero reads them once. Default 1 minute.
    /// </summary>
    public TimeSpan? ReloadInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>When true a secret that does not exist adds no keys; when false (the default) it fails the load.</summary>
    public bool Optional { get; set; }

    /// <summary>Adds a secret: each field of the KV secret at <paramref name="path"/> becomes a configuration key.</summary>
    /// <param name="path">The secret's path, e.g. <c>apps/billing/db</c>.</param>
    /// <param name="section">
    /// The configuration section its fields go under, e.g. <c>Database</c> gives <c>Database:password</c>.
    /// Null uses the path with <c>/</c> read as <c>:</c>: <c>apps:billing:db:password</c>.
    /// </param>
    /// <returns>These options, for chaining.</returns>
    public VaultConfigurationOptions Map(string path, string? section = null)
    {
        Secrets.Add(new VaultSecretMapping(path, section));
        return this;
    }
}

/// <summary>A KV secret exposed as configuration.</summary>
/// <param name="Path">The secret's path.</param>
/// <param name="Section">The configuration section its fields go under; null derives it from the path.</param>
public sealed record VaultSecretMapping(string Path, string? Section = null)
{
    /// <summary>The configuration key of one of the secret's fields.</summary>
    /// <param name="field">The field's name, e.g. <c>password</c>.</param>
    /// <returns>e.g. <c>apps:billing:db:password</c>.</returns>
    public string KeyOf(string field) => $"{Section ?? Path.Trim('/').Replace('/', ':')}:{field}";
}
