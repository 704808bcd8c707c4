namespace Vault.Server.Secrets;

/// <summary>Non-secret metadata of a KV path: its versions and settings. Stored in plaintext.</summary>
public sealed class SecretMetadataRecord
{
    public long CurrentVersion { get; set; }
    /// <summary>Random, new each time the path is created; bound into every version's associated data.</summary>
    public string Generation { get; set; } = "";
    public int MaxVersions { get; set; }
    public bool CasRequired { get; set; }
    public long CreatedAtUnixMs { get; set; }
    public long UpdatedAtUnixMs { get; set; }
    public Dictionary<string, string> CustomMetadata { get; set; } = [];
    public List<SecretVersionEntry> Versions { get; set; } = [];
}

/// <summary>One version's bookkeeping.</summary>
public sealed class SecretVersionEntry
{
    public long Version { get; set; }
    public long CreatedAtUnixMs { get; set; }
    public long? DeletedAtUnixMs { get; set; }
    public bool Destroyed { get; set; }
}

/// <summary>One version's value: ciphertext and its wrapped data key, nothing else.</summary>
public sealed class SecretVersionRecord
{
    public int KekVersion { get; set; }
    public byte[] WrappedDataKey { get; set; } = [];
    public byte[] Ciphertext { get; set; } = [];
}
