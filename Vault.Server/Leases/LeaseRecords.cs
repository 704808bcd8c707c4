using System.Globalization;
using Vault.Server.Crypto;

namespace Vault.Server.Leases;

/// <summary>A dynamic role as stored (keyed by name), sealed with an HMAC like policies: its statements run as the admin.</summary>
public sealed class DynamicRoleRecord
{
    public string Target { get; set; } = "";
    public List<string> CreationStatements { get; set; } = [];
    public long DefaultTtlSeconds { get; set; }
    public long MaxTtlSeconds { get; set; }
    public byte[]? Seal { get; set; }

    internal string Canonical() => string.Join('\n',
        Target, string.Join('\u001f', CreationStatements),
        DefaultTtlSeconds.ToString(CultureInfo.InvariantCulture), MaxTtlSeconds.ToString(CultureInfo.InvariantCulture));
}

/// <summary>A check-out set as stored (keyed by name), sealed: rotation targets lent one holder at a time.</summary>
public sealed class CheckoutSetRecord
{
    public List<string> Targets { get; set; } = [];
    public long DefaultTtlSeconds { get; set; }
    public long MaxTtlSeconds { get; set; }
    public byte[]? Seal { get; set; }

    internal string Canonical() => string.Join('\n',
        string.Join(',', Targets), DefaultTtlSeconds.ToString(CultureInfo.InvariantCulture), MaxTtlSeconds.ToString(CultureInfo.InvariantCulture));
}

/// <summary>
/// A lease as stored (keyed by lease id), sealed so its expiry cannot be moved by editing the data
/// file. Holds the user's name, never its password.
/// </summary>
public sealed class LeaseRecord
{
    public string Role { get; set; } = "";
    public string Target { get; set; } = "";
    public string Username { get; set; } = "";
    public string TokenAccessor { get; set; } = "";
    public long IssuedAtUnixMs { get; set; }
    public long ExpiresAtUnixMs { get; set; }
    public long MaxExpiresAtUnixMs { get; set; }
    /// <summary><see cref="LeaseStates"/>.</summary>
    public string State { get; set; } = LeaseStates.Active;
    [NotSealed("Revocation retry bookkeeping the reaper rewrites; the lease's end and state are sealed")]
    public int RevokeAttempts { get; set; }
    [NotSealed("Revocation retry bookkeeping the reaper rewrites. An open gap: moving it delays a retry of a lease already revoking (sealing it would refuse leases stored mid-retry by older versions)")]
    public long? NextAttemptAtUnixMs { get; set; }
    [NotSealed("A message for the operator")]
    public string? LastError { get; set; }
    public byte[]? Seal { get; set; }

    internal string Canonical() => string.Join('\n',
        Role, Target, Username, TokenAccessor,
        IssuedAtUnixMs.ToString(CultureInfo.InvariantCulture), ExpiresAtUnixMs.ToString(CultureInfo.InvariantCulture),
        MaxExpiresAtUnixMs.ToString(CultureInfo.InvariantCulture), State);
}

public static class LeaseStates
{
    /// <summary>Written before its user is made; nothing ends it until that is done (or abandoned by a crash).</summary>
    public const string Creating = "creating";
    public const string Active = "active";
    public const string Revoking = "revoking";
    public const string Irrevocable = "irrevocable";
    public const string Revoked = "revoked";
}

/// <summary>The answers of keyed lease calls, recorded for a client's repeat (fields: an issue's answer is a tuple).</summary>
[System.Text.Json.Serialization.JsonSourceGenerationOptions(IncludeFields = true)]
[System.Text.Json.Serialization.JsonSerializable(typeof((string LeaseId, LeaseRecord Lease, string Password)))]
[System.Text.Json.Serialization.JsonSerializable(typeof((string LeaseId, LeaseRecord Lease)))]
[System.Text.Json.Serialization.JsonSerializable(typeof(LeaseRecord))]
internal sealed partial class LeaseJson : System.Text.Json.Serialization.JsonSerializerContext;
