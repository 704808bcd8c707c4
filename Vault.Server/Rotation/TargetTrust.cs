using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using Vault.Rotators;

namespace Vault.Server.Rotation;

/// <summary>
/// How the vault reaches a stored target's system: its options as the rotator reads them, and the
/// CA certificates its TLS certificate must chain to. A target registered before verified TLS
/// became the default (<see cref="TargetRecord.VerifiedTlsByDefault"/> unset) keeps the mode it had
/// (<see cref="ICredentialRotator.LegacyTransport"/>) unless it names one, and is flagged; a target
/// without its own CA bundle is checked against <see cref="RotationOptions.TargetCaFile"/> when set,
/// else the machine's trusted CAs.
/// </summary>
public sealed class TargetTrust(IOptions<RotationOptions> options, RotatorRegistry rotators)
{
    private readonly Lazy<string> _defaultCa = new(() => Read(options.Value.TargetCaFile) ?? "");

    /// <summary>What a warning about a target from before the default says first.</summary>
    public const string LegacyNote = "registered before verified TLS was the default (register it again to move it to verified TLS)";

    /// <summary>The CA certificates of <see cref="RotationOptions.TargetCaFile"/>, or empty.</summary>
    public string DefaultCaCertificates => _defaultCa.Value;

    /// <summary>The connection for a target being registered now (its own options; the vault's default CA when it has none).</summary>
    public TargetConnection ForSpec(TargetSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var connection = spec.Connection();
        return connection.CaCertificates.Length > 0 ? connection : connection with { CaCertificates = DefaultCaCertificates };
    }

    /// <summary>The connection of a stored target, without timeouts (see <see cref="TargetManager.Connection"/>).</summary>
    public TargetConnection ForRecord(TargetRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return Connection(record, EffectiveOptions(record, out _));
    }

    /// <summary>How the vault reaches a stored target's system; a target from before the default says so in its warning.</summary>
    public TransportSecurity? Transport(TargetRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (!rotators.TryGet(record.Kind, out var rotator))
        {
            return null;
        }
        var transport = rotator.Transport(Connection(record, EffectiveOptions(record, out var legacy)));
        return legacy && transport.Warning is { } warning ? transport with { Warning = $"{LegacyNote}: {warning}" } : transport;
    }

    private TargetConnection Connection(TargetRecord record, Dictionary<string, string> options) =>
        new(record.Host.Trim(), record.Port, record.Database ?? "", options)
        {
            CaCertificates = (record.CaCertificates ?? "").Length > 0 ? record.CaCertificates! : DefaultCaCertificates,
            CertificatePin = record.CertificatePin ?? "",
        };

    /// <summary>The record's options, plus the rotator's legacy transport for a target from before the default that names none.</summary>
    private Dictionary<string, string> EffectiveOptions(TargetRecord record, out bool legacy)
    {
        var effective = new Dictionary<string, string>(record.Options, StringComparer.Ordinal);
        legacy = false;
        if (!record.VerifiedTlsByDefault && rotators.TryGet(record.Kind, out var rotator) && !rotator.LegacyTransport.Keys.Any(record.Options.ContainsKey))
        {
            legacy = true;
            foreach (var (key, value) in rotator.LegacyTransport)
            {
                effective[key] = value;
            }
        }
        return effective;
    }

    /// <summary>Whether <paramref name="path"/> is unset or a readable PEM file holding at least one certificate (checked at start-up).</summary>
    internal static bool IsUsable(string? path)
    {
        try
        {
            return string.IsNullOrEmpty(path) || Read(path) is { Length: > 0 };
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
        {
            return false;
        }
    }

    private static string? Read(string? path)
    {
        if (string.IsNullOrEmpty(path))
        {
            return null;
        }
        var pem = File.ReadAllText(path);
        var certificates = new X509Certificate2Collection();
        certificates.ImportFromPem(pem);
        var any = certificates.Count > 0;
        foreach (var certificate in certificates)
        {
            certificate.Dispose();
        }
        return any ? pem : null;
    }
}
