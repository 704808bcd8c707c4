using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Cli;

public sealed class CliTlsTests
{
    [Fact]
    public async Task OperatorStatus_OverTls_WorksWithCaCertAndFailsWithout()
    {
        var dir = Directory.CreateTempSubdirectory("vault-tls-").FullName;
        var (certPath, keyPath) = WriteSelfSignedCertificate(dir);
        await using var vault = await TestVault.StartAsync("--tls-cert", certPath, "--tls-key", keyPath);
        var address = vault.Address.Replace("http://", "https://", StringComparison.Ordinal);
        Assert.StartsWith("https://127.0.0.1:", address, StringComparison.Ordinal);
        var ctl = new VaultCtl(address);

        var untrusted = await ctl.RunAsync("operator", "status");
        ctl.Environment["VAULT_CACERT"] = certPath;
        var trusted = (await ctl.RunAsync("operator", "status", "--json")).Json();
        ctl.Environment["VAULT_CACERT"] = null;
        var viaFlag = await ctl.RunAsync("operator", "status", "--ca-cert", certPath);
        var plaintext = await ctl.RunAsync("operator", "status", "--address", address.Replace("https://", "http://", StringComparison.Ordinal));

        untrusted.OneLineError(3, "TLS handshake failed");
        Assert.False(trusted.GetProperty("initialized").GetBoolean());
        Assert.Matches("(?m)^Sealed +true$", viaFlag.Ok());
        plaintext.OneLineError(3, "use an https:// address");
        Directory.Delete(dir, recursive: true);
    }

    private static (string CertPath, string KeyPath) WriteSelfSignedCertificate(string dir)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=vault-test", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyCertSign, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        var certPath = Path.Combine(dir, "server.crt");
        var keyPath = Path.Combine(dir, "server.key");
        File.WriteAllText(certPath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (certPath, keyPath);
    }
}
