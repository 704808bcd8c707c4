using System.Text;

namespace Vault.Server.Telemetry.Events;

/// <summary>The webhook's settings, checked: the receiver's URL and the signing key. Every problem is one <see cref="ValidationException"/> naming the setting.</summary>
public sealed record WebhookSettings(Uri Url, byte[] Key)
{
    public const string UrlSetting = "Vault:Events:Webhook:Url";
    public const string SecretFileSetting = "Vault:Events:Webhook:SecretFile";

    /// <summary>The shortest key accepted, in characters.</summary>
    public const int MinKeyLength = 16;

    /// <summary>The settings of a configured webhook; null when there is none.</summary>
    /// <exception cref="ValidationException">A setting is missing or unusable (the message names it).</exception>
    public static WebhookSettings? Read(EventOptions? options)
    {
        var webhook = options?.Webhook ?? new WebhookOptions();
        if (string.IsNullOrEmpty(webhook.Url))
        {
            return string.IsNullOrEmpty(webhook.SecretFile) ? null : throw new ValidationException(UrlSetting, $"is required with {SecretFileSetting}");
        }
        if (!Uri.TryCreate(webhook.Url, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps) || url.Host.Length == 0)
        {
            throw new ValidationException(UrlSetting, $"'{webhook.Url}' is not an absolute http:// or https:// URL");
        }
        if (url.UserInfo.Length > 0)
        {
            // It would be logged with the URL; the signature is how a receiver knows the sender.
            throw new ValidationException(UrlSetting, "must not carry a user name or password");
        }
        if (string.IsNullOrEmpty(webhook.SecretFile))
        {
            throw new ValidationException(SecretFileSetting, "is required with a webhook URL: a file holding the key the events are signed with");
        }
        string text;
        try
        {
            text = File.ReadAllText(webhook.SecretFile).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ValidationException(SecretFileSetting, $"cannot be read: {ex.Message}");
        }
        if (text.Length < MinKeyLength)
        {
            throw new ValidationException(SecretFileSetting, $"must hold a key of at least {MinKeyLength} characters (e.g. openssl rand -hex 32)");
        }
        if (webhook.MinBackoff <= TimeSpan.Zero || webhook.MaxBackoff < webhook.MinBackoff)
        {
            throw new ValidationException("Vault:Events:Webhook:MaxBackoff", "must be at least MinBackoff, which must be positive");
        }
        if (webhook.Timeout <= TimeSpan.Zero)
        {
            throw new ValidationException("Vault:Events:Webhook:Timeout", "must be positive");
        }
        if (webhook.MaxSpooled < 1)
        {
            throw new ValidationException("Vault:Events:Webhook:MaxSpooled", "must be at least 1");
        }
        return new WebhookSettings(url, Encoding.UTF8.GetBytes(text));
    }
}
