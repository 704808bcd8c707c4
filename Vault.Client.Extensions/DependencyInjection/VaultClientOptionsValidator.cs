using Microsoft.Extensions.Options;

namespace Vault.Client.Extensions.DependencyInjection;

/// <summary>Checks bound <see cref="VaultClientOptions"/> at start-up, naming the setting that is wrong.</summary>
public sealed class VaultClientOptionsValidator : IValidateOptions<VaultClientOptions>
{
    /// <summary>Validates the options.</summary>
    /// <param name="name">The options' name (unused: one client per container).</param>
    /// <param name="options">The bound options.</param>
    /// <returns>Success, or every problem found.</returns>
    public ValidateOptionsResult Validate(string? name, VaultClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (!Uri.TryCreate(options.Address, UriKind.Absolute, out var address) || (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps))
        {
            failures.Add($"Address: '{options.Address}' is not an absolute http:// or https:// URL");
        }
        var hasToken = !string.IsNullOrEmpty(options.Token);
        var hasRoleId = !string.IsNullOrEmpty(options.RoleId);
        var hasSecretId = !string.IsNullOrEmpty(options.SecretId);
        if (hasToken && (hasRoleId || hasSecretId))
        {
            failures.Add("Token, RoleId/SecretId: set either a token or AppRole ids, not both");
        }
        else if (hasRoleId != hasSecretId)
        {
            failures.Add(hasRoleId ? "SecretId: AppRole login needs a secret id with the role id" : "RoleId: AppRole login needs a role id with the secret id");
        }
        else if (!hasToken && !hasRoleId)
        {
            failures.Add("Token, RoleId/SecretId: set a token or AppRole ids");
        }
        if (!string.IsNullOrEmpty(options.CaCertificateFile) && !File.Exists(options.CaCertificateFile))
        {
            failures.Add($"CaCertificateFile: '{options.CaCertificateFile}' does not exist");
        }
        if (options.ConnectTimeout <= TimeSpan.Zero)
        {
            failures.Add("ConnectTimeout: must be positive");
        }
        if (options.Timeout <= TimeSpan.Zero)
        {
            failures.Add("Timeout: must be positive");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
