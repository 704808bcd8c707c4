namespace Vault.Client;

/// <summary>What <see cref="VaultClient.BackupAsync"/> wrote.</summary>
/// <param name="Index">The store's commit index the backup stands at: writes acknowledged before it are in it, none after it.</param>
/// <param name="CreatedAt">When the server took it.</param>
/// <param name="Records">How many records it holds.</param>
public sealed record BackupInfo(long Index, DateTimeOffset CreatedAt, long Records)
{
    /// <summary>The backup's size in bytes.</summary>
    public long Bytes { get; init; }
}
