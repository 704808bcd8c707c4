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
    /// <summary>The person the token acts for (entity name), or empty for a program's token.</summary>
    public string Entity { get; set; } = "";
    /// <summary>The entity's id when the token was issued: a name deleted and created again is someone else.</summary>
    public string EntityId { get; set; } = "";
    /// <summary>Vault groups the token holds through its login (a directory's groups, mapped), beside its entity's own.</summary>
    public List<string> ExternalGroups { get; set; } = [];
    /// <summary>When an MFA code was last validated for this token (at login, or later for step-up); null if never.</summary>
    public long? MfaAtUnixMs { get; set; }
    /// <summary>HMAC over the fields above (see <see cref="RecordSeal"/>).</summary>
    public byte[]? Seal { get; set; }

    internal string Canonical() =>
        $"{Accessor}\n{string.Join(',', Policies)}\n{DisplayName}\n{CreatedAtUnixMs}\n{ExpiresAtUnixMs}\n{MaxExpiresAtUnixMs}\n{TtlSeconds}\n{ParentAccessor}"
        // Appended only when set, so the seals of tokens stored before entities existed still match.
        + (Entity.Length > 0 || EntityId.Length > 0 ? $"\n{Entity}\n{EntityId}" : "")
        + (MfaAtUnixMs is { } mfa ? $"\nmfa:{mfa}" : "")
        + (ExternalGroups.Count > 0 ? $"\ngroups:{string.Join(',', ExternalGroups)}" : "");
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
