using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Vault.Benchmarks.Hosting;

/// <summary>
/// A self-signed certificate for 127.0.0.1 and localhost, made once per run and written as PEM
/// (certificate and PKCS#8 key) into the run's directory. Both servers load it from those files,
/// the way the vault's <c>--tls-cert</c> / <c>--tls-key</c> do; clients trust exactly it.
/// </summary>
internal sealed record TlsFiles(string CertFile, string KeyFile, string Sha256Thumbprint)
{
    /// <summary>What the report says the servers present.</summary>
    public const string Description = "self-signed ECDSA P-256 certificate for 127.0.0.1/localhost, TLS 1.2+ as negotiated by SslStream";

    public static TlsFiles Create(string directory)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.CreateSelfSigned(now.AddHours(-1), now.AddDays(7));

        var certFile = Path.Combine(directory, "bench-tls.crt");
        var keyFile = Path.Combine(directory, "bench-tls.key");
        File.WriteAllText(certFile, certificate.ExportCertificatePem());
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return new TlsFiles(certFile, keyFile, certificate.GetCertHashString(HashAlgorithmName.SHA256));
    }

    /// <summary>
    /// Loads the pair the way VaultServerHost.LoadCertificate does for <c>--tls-cert</c> and
    /// <c>--tls-key</c> (that method is private to the server): from PEM, then through PKCS#12 so
    /// that SslStream can use the key.
    /// </summary>
    public X509Certificate2 LoadServerCertificate()
    {
        using var pem = X509Certificate2.CreateFromPemFile(CertFile, KeyFile);
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>Client side: accept the server's certificate only if it is exactly this one.</summary>
    public SslClientAuthenticationOptions ClientOptions() => new()
    {
        RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            certificate is not null && string.Equals(certificate.GetCertHashString(HashAlgorithmName.SHA256), Sha256Thumbprint, StringComparison.OrdinalIgnoreCase),
    };
}
