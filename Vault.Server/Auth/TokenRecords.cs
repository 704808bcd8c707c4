using Vault.Server.Crypto;

namespace Vault.Server.Auth;

/// <summary>A token as stored, keyed by the HMAC of the token. The token itself is never stored.</summary>
public sealed class TokenRecord
{
    public string Accessor { get; set; } = "";
    public List<string> Policies { get; set; } = [];
    public string DisplayName { get; set; } = "";
    public long CreatedAtUnixMs { get; set; }
    /// <summary>Null for tokens that never expire (root).</summary>
    public long? ExpiresAtUnixMs { get; set; }
    public long? MaxExpiresAtUnixMs { get; set; }
    public long TtlSeconds { get; set; }
    public string ParentAccessor { get; set; } = "";
    /// <summary>HMAC over the fields above (see <see cref="RecordSeal"/>).</summary>
    public byte[]? Seal { get; set; }

    internal string Canonical() =>
        $"{Accessor}\n{string.Join(',', Policies)}\n{DisplayName}\n{CreatedAtUnixMs}\n{ExpiresAtUnixMs}\n{MaxExpiresAtUnixMs}\n{TtlSeconds}\n{ParentAccessor}";
}

/// <summary>Accessor → token hash, so a token can be looked up or revoked without knowing it.</summary>
public sealed class TokenAccessorRecord
{
    public string TokenHash { get; set; } = "";
}

/// <summary>Marks a parent/child link; the id is "parentAccessor/childAccessor".</summary>
public sealed class TokenChildRecord
{
    public string ChildAccessor { get; set; } = "";
}
