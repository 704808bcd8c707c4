namespace Vault.Server.Crypto;

/// <summary>
/// A value under envelope encryption: the value sealed with its own data key, and that data
/// key wrapped under key-encryption key <see cref="KekVersion"/>.
/// </summary>
public sealed record SealedValue(int KekVersion, byte[] WrappedDataKey, byte[] Ciphertext);

/// <summary>What a sealed value is: bound into its associated data so it cannot be moved.</summary>
/// <param name="Kind">Record kind, e.g. <c>kv</c>.</param>
/// <param name="Id">The record's identity within its kind, e.g. the secret path.</param>
/// <param name="Version">The record's version.</param>
public readonly record struct RecordIdentity(string Kind, string Id, long Version)
{
    public byte[] ValueAssociatedData() => System.Text.Encoding.UTF8.GetBytes($"value\n{Kind}\n{Id}\n{Version}");

    public byte[] KeyAssociatedData(int kekVersion) => System.Text.Encoding.UTF8.GetBytes($"dek\n{Kind}\n{Id}\n{Version}\n{kekVersion}");
}
