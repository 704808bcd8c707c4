using System.Globalization;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Vault.Rotators.Tls;

/// <summary>
/// Checks a target system's TLS certificate the one way every rotator does: it chains to the
/// target's CA bundle (or, without one, to the machine's trust store), is valid now and for server
/// authentication, names the host (unless only the CA is checked), and, when pinned, carries the
/// pinned key. Revocation is not checked: private CAs rarely publish CRLs or OCSP a vault can reach.
/// </summary>
/// <remarks>
/// One instance serves one connection attempt (or the attempts of one pool, which all reach the same
/// server): the driver calls <see cref="Validate"/> during the handshake, and when the handshake fails
/// the rotator reads <see cref="Problem"/> to say, in one line, what was wrong with the certificate.
/// </remarks>
internal sealed class CertificateCheck
{
    private const string PinPrefix = "sha256:";
    private static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1");

    private readonly X509Certificate2Collection _roots;
    private readonly byte[]? _pin;
    private readonly string _host;
    private readonly bool _checkName;
    private volatile string? _problem;

    private CertificateCheck(X509Certificate2Collection roots, byte[]? pin, string host, bool checkName)
    {
        _roots = roots;
        _pin = pin;
        _host = host;
        _checkName = checkName;
    }

    /// <summary>What was wrong with the last certificate refused, or null.</summary>
    public string? Problem => _problem;

    /// <summary>The check for <paramref name="connection"/>'s system (already validated by <see cref="ValidateSettings"/>).</summary>
    /// <param name="checkName">Whether the certificate must name <see cref="TargetConnection.Host"/> (<c>verify-full</c>), or only chain to the CA (<c>verify-ca</c>).</param>
    public static CertificateCheck For(TargetConnection connection, bool checkName)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var roots = new X509Certificate2Collection();
        if (connection.CaCertificates.Length > 0)
        {
            roots.ImportFromPem(connection.CaCertificates);
        }
        var pin = connection.CertificatePin.Length == 0 ? null
            : ParsePin(connection.CertificatePin) ?? throw new ArgumentException("the certificate pin is not sha256:<base64 of 32 bytes>", nameof(connection));
        return new CertificateCheck(roots, pin, connection.Host, checkName);
    }

    /// <summary>Checks the CA bundle and pin of a target before it is stored.</summary>
    /// <returns>Null when usable, else (field, reason) with field <c>ca_certificates</c> or <c>certificate_pin</c>.</returns>
    public static (string Field, string Reason)? ValidateSettings(TargetConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (connection.CaCertificates.Length > 0)
        {
            var roots = new X509Certificate2Collection();
            try
            {
                roots.ImportFromPem(connection.CaCertificates);
            }
            catch (CryptographicException)
            {
                return ("ca_certificates", "is not a PEM certificate bundle");
            }
            if (roots.Count == 0)
            {
                return ("ca_certificates", "holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
            }
            foreach (var root in roots)
            {
                root.Dispose();
            }
        }
        if (connection.CertificatePin.Length > 0 && ParsePin(connection.CertificatePin) is null)
        {
            return ("certificate_pin", "must be sha256: and the base64 SHA-256 of the certificate's SubjectPublicKeyInfo (44 characters)");
        }
        return null;
    }

    /// <summary>The pin of a certificate's key, as <see cref="TargetConnection.CertificatePin"/> takes it.</summary>
    public static string PinOf(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return PinPrefix + Convert.ToBase64String(SHA256.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo()));
    }

    /// <summary>A <see cref="RemoteCertificateValidationCallback"/>: the driver's own verdict is ignored, this check decides.</summary>
    public bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        var problem = Check(certificate, chain);
        _problem = problem;
        return problem is null;
    }

    /// <summary>What is wrong with <paramref name="certificate"/> for this target, or null when it is trusted.</summary>
    public string? Check(X509Certificate? certificate, X509Chain? presented)
    {
        if (certificate is null)
        {
            return "the server presented no certificate";
        }
        using var owned = certificate as X509Certificate2 is null ? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()) : null;
        var leaf = owned ?? (X509Certificate2)certificate;
        using var chain = new X509Chain();
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(ServerAuthentication);
        if (_roots.Count > 0)
        {
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(_roots);
        }
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements)
            {
                if (!element.Certificate.RawDataMemory.Span.SequenceEqual(leaf.RawDataMemory.Span))
                {
                    chain.ChainPolicy.ExtraStore.Add(element.Certificate);
                }
            }
        }
        if (!chain.Build(leaf))
        {
            return Describe(chain, leaf);
        }
        if (_checkName && !leaf.MatchesHostname(_host))
        {
            return $"the certificate does not name {_host} (it is for {Names(leaf)})";
        }
        if (_pin is not null && !CryptographicOperations.FixedTimeEquals(_pin, SHA256.HashData(leaf.PublicKey.ExportSubjectPublicKeyInfo())))
        {
            return $"the certificate's key is not the pinned one (the server's is {PinOf(leaf)})";
        }
        return null;
    }

    private string Describe(X509Chain chain, X509Certificate2 leaf)
    {
        var trust = X509ChainStatusFlags.UntrustedRoot | X509ChainStatusFlags.PartialChain | X509ChainStatusFlags.NotSignatureValid;
        var all = chain.ChainStatus.Aggregate(X509ChainStatusFlags.NoError, (flags, s) => flags | s.Status);
        if ((all & trust) != 0)
        {
            var trusted = _roots.Count > 0 ? "the target's CA certificates" : "the machine's trusted CAs";
            return $"the certificate (issued by {leaf.Issuer}) does not chain to {trusted}";
        }
        foreach (var element in chain.ChainElements)
        {
            if (element.ChainElementStatus.Any(s => s.Status.HasFlag(X509ChainStatusFlags.NotTimeValid)))
            {
                var which = element.Certificate.RawDataMemory.Span.SequenceEqual(leaf.RawDataMemory.Span) ? "the certificate" : $"the CA certificate {element.Certificate.Subject}";
                var now = DateTime.Now;
                return element.Certificate.NotAfter < now
                    ? $"{which} expired at {element.Certificate.NotAfter.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)}Z"
                    : $"{which} is not valid before {element.Certificate.NotBefore.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)}Z";
            }
        }
        if (all.HasFlag(X509ChainStatusFlags.NotValidForUsage))
        {
            return "the certificate is not for server authentication";
        }
        var statuses = chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct(StringComparer.Ordinal);
        return $"the certificate is not trusted: {string.Join("; ", statuses)}";
    }

    private static string Names(X509Certificate2 certificate)
    {
        var names = new List<string>();
        foreach (var extension in certificate.Extensions)
        {
            if (extension is X509SubjectAlternativeNameExtension san)
            {
                names.AddRange(san.EnumerateDnsNames());
                names.AddRange(san.EnumerateIPAddresses().Select(a => a.ToString()));
            }
        }
        return names.Count > 0 ? string.Join(", ", names) : certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
    }

    private static byte[]? ParsePin(string pin)
    {
        if (pin.Length == 0 || !pin.StartsWith(PinPrefix, StringComparison.Ordinal))
        {
            return null;
        }
        var hash = new byte[32];
        return Convert.TryFromBase64String(pin[PinPrefix.Length..], hash, out var written) && written == 32 ? hash : null;
    }
}
