namespace Vault.Server.Auth;

/// <summary>A machine-login role as stored (keyed by name), sealed like policies.</summary>
public sealed class AppRoleRecord
{
    public string RoleId { get; set; } = "";
    public List<string> Policies { get; set; } = [];
    public long TokenTtlSeconds { get; set; }
    public long TokenMaxTtlSeconds { get; set; }
    public long SecretIdTtlSeconds { get; set; }
    public int SecretIdNumUses { get; set; }
    public List<string> BoundCidrs { get; set; } = [];
    public byte[]? Seal { get; set; }

    internal string Canonical() =>
        $"{RoleId}\n{string.Join(',', Policies)}\n{TokenTtlSeconds}\n{TokenMaxTtlSeconds}\n{SecretIdTtlSeconds}\n{SecretIdNumUses}\n{string.Join(',', BoundCidrs)}";
}

/// <summary>Role id → role name.</summary>
public sealed class AppRoleIdRecord
{
    public string RoleName { get; set; } = "";
}

/// <summary>A secret id as stored: keyed by its HMAC, never the secret id itself.</summary>
public sealed class SecretIdRecord
{
    public string RoleName { get; set; } = "";
    public string Accessor { get; set; } = "";
    public long CreatedAtUnixMs { get; set; }
    public long? ExpiresAtUnixMs { get; set; }
    /// <summary>Logins left; null for unlimited.</summary>
    public int? UsesLeft { get; set; }
    public byte[]? Seal { get; set; }

    internal string Canonical() => $"{RoleName}\n{Accessor}\n{CreatedAtUnixMs}\n{ExpiresAtUnixMs}\n{UsesLeft}";
}
