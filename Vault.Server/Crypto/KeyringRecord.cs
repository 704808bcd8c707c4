namespace Vault.Server.Crypto;

/// <summary>The wrapped keyring and the public parameters needed to unwrap it.</summary>
public sealed class KeyringRecord
{
    public const string Id = "keyring";

    /// <summary>The keyring wrapped under the key of a re-split in progress, until a quorum of its new shares is given back.</summary>
    public const string PendingId = "keyring_pending";

    public byte[] Salt { get; set; } = [];
    public int MemoryKib { get; set; }
    public int Iterations { get; set; }
    public int Parallelism { get; set; }
    public int KeyVersion { get; set; }
    public byte[] WrappedKeyring { get; set; } = [];
    public long CreatedAtUnixMs { get; set; }
    public long KeyRotatedAtUnixMs { get; set; }

    /// <summary>With key shares: how many shares the (random) unseal key was split into; 0 in passphrase mode.</summary>
    public int SecretShares { get; set; }

    /// <summary>With key shares: how many of them unseal.</summary>
    public int SecretThreshold { get; set; }

    internal KdfParameters Kdf => new(MemoryKib, Iterations, Parallelism);

    /// <summary>The parameters are bound into the keyring's associated data, so they cannot be swapped.</summary>
    internal byte[] AssociatedData() =>
        System.Text.Encoding.UTF8.GetBytes($"keyring\n{Convert.ToBase64String(Salt)}\n{MemoryKib}\n{Iterations}\n{Parallelism}"
            // Only with shares, so a keyring wrapped before shares existed still opens.
            + (SecretShares > 0 ? $"\nshares:{SecretShares}/{SecretThreshold}" : ""));
}
