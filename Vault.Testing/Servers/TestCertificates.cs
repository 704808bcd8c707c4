using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Vault.Testing.Servers;

/// <summary>A certificate and its private key, as PEM.</summary>
public sealed record PemCertificate(string CertificatePem, string KeyPem);

/// <summary>
/// A private certificate authority for a test, and server certificates it signs for 127.0.0.1
/// (and localhost): what a server needs to speak TLS that a client can check, and a second CA's to
/// show a client refusing a certificate it was not told to trust.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    private static readonly Lazy<TestCertificates> RunCa = new(() => new TestCertificates("Vault test run CA"));
    private static readonly Lazy<PemCertificate> RunServer = new(() => RunCa.Value.IssueServer());
    private static readonly Lazy<string> RunFile = new(() =>
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("vault-run-ca-").FullName, "ca.pem");
        File.WriteAllText(path, RunCa.Value.CaPem);
        return path;
    });

    /// <summary>The CA made for this test run: the shared servers' certificates come from it, and the vaults the tests start trust it for their targets.</summary>
    public static TestCertificates Run => RunCa.Value;

    /// <summary>The certificate (for 127.0.0.1 and localhost) every server started without one of its own offers TLS with.</summary>
    public static PemCertificate RunServerCertificate => RunServer.Value;

    /// <summary>A file holding <see cref="Run"/>'s CA certificate, for <c>--Vault:Rotation:TargetCaFile</c>.</summary>
    public static string RunCaFile => RunFile.Value;

    private readonly RSA _caKey = RSA.Create(2048);
    private readonly X509Certificate2 _ca;

    public TestCertificates(string name = "Vault test CA")
    {
        var request = new CertificateRequest($"CN={name}", _caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        _ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-30), DateTimeOffset.UtcNow.AddDays(30));
    }

    /// <summary>The CA certificate, PEM: what a client is told to trust.</summary>
    public string CaPem => _ca.ExportCertificatePem();

    /// <summary>A server certificate for 127.0.0.1 and localhost, signed by this CA.</summary>
    /// <param name="commonName">The subject's CN.</param>
    /// <param name="localhost">Whether the certificate also names <c>localhost</c>; without it, a client reaching the server as <c>localhost</c> sees a name mismatch.</param>
    /// <param name="expired">A certificate whose validity ended yesterday.</param>
    public PemCertificate IssueServer(string commonName = "127.0.0.1", bool localhost = true, bool expired = false)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        if (localhost)
        {
            names.AddDnsName("localhost");
        }
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_ca, true, false));
        var (notBefore, notAfter) = expired
            ? (DateTimeOffset.UtcNow.AddDays(-20), DateTimeOffset.UtcNow.AddDays(-1))
            : (DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(29));
        using var certificate = request.Create(_ca, notBefore, notAfter, RandomNumberGenerator.GetBytes(16));
        return new PemCertificate(certificate.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    public void Dispose()
    {
        _ca.Dispose();
        _caKey.Dispose();
    }
}
