using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Vault.Client.Internal;

/// <summary>
/// Validates a server certificate against a private set of trusted roots (VAULT_CACERT),
/// ignoring the system store, while still checking the host name.
/// </summary>
internal sealed class CustomRootValidator(X509Certificate2Collection roots)
{
    /// <summary>Loads every certificate in a PEM file.</summary>
    /// <exception cref="ArgumentException">The file cannot be read or holds no certificate.</exception>
    public static CustomRootValidator FromPemFile(string path)
    {
        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPemFile(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new ArgumentException($"cannot load CA certificate file '{path}': {ex.Message}", ex);
        }
        if (roots.Count == 0)
        {
            throw new ArgumentException($"CA certificate file '{path}' holds no PEM certificate");
        }
        return new CustomRootValidator(roots);
    }

    public bool Validate(object sender, X509Certificate? certificate, X509Chain? presentedChain, SslPolicyErrors errors)
    {
        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable) || errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
        {
            return false;
        }
        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        // A private CA rarely publishes revocation lists; the operator vouches for it by configuring it.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presentedChain is not null)
        {
            foreach (var element in presentedChain.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }
        return chain.Build(leaf);
    }
}
