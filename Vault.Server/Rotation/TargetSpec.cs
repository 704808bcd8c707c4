using Vault.Rotators;
using Vault.Rotators.Passwords;

namespace Vault.Server.Rotation;

/// <summary>A target as an admin writes it (configuration only; passwords travel separately).</summary>
public sealed record TargetSpec(
    string Name,
    string Kind,
    string Host,
    int Port,
    string Database,
    IReadOnlyDictionary<string, string> Options,
    string Account,
    string SecondAccount,
    bool AlternatingUsers,
    string AdminSecret,
    bool ManagesAdminSecret,
    PasswordPolicy? PasswordPolicy,
    TimeSpan? Interval,
    string? Cron,
    string? WindowStart,
    string? WindowEnd,
    TimeSpan? MaxJitter)
{
    /// <summary>PEM CA certificates the system's TLS certificate must chain to; empty for the machine's trusted CAs.</summary>
    public string CaCertificates { get; init; } = "";

    /// <summary>Optional <c>sha256:</c> pin of the system's certificate key.</summary>
    public string CertificatePin { get; init; } = "";

    /// <summary>The connection as the rotator checks it and the record stores it: host trimmed, no database as empty.</summary>
    internal TargetConnection Connection() => new(Host.Trim(), Port, Database ?? "", new Dictionary<string, string>(Options, StringComparer.Ordinal))
    {
        CaCertificates = CaCertificates ?? "",
        CertificatePin = CertificatePin ?? "",
    };
}

/// <summary>What a target's current credential is, for applications.</summary>
public sealed record TargetCredentialValue(string Username, string Password, long Version, DateTimeOffset? RotatedAt, DateTimeOffset? NextRotationAt);
