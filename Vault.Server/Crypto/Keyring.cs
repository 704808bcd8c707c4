using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Vault.Server.Crypto;

/// <summary>
/// The key-encryption keys (one per version) and the root of the HMAC keys. Lives only in
/// memory while the vault is unsealed; on disk it exists only wrapped by the unseal key.
/// </summary>
internal sealed class Keyring : IDisposable
{
    private const byte FormatVersion = 1;
    private readonly SortedDictionary<int, byte[]> _keks;
    private readonly byte[] _hmacRoot;

    private Keyring(SortedDictionary<int, byte[]> keks, byte[] hmacRoot)
    {
        _keks = keks;
        _hmacRoot = hmacRoot;
    }

    public int CurrentVersion => _keks.Keys.Max();

    public static Keyring CreateNew() =>
        new(new SortedDictionary<int, byte[]> { [1] = RandomNumberGenerator.GetBytes(Aead.KeySize) }, RandomNumberGenerator.GetBytes(32));

    /// <summary>Returns a keyring with one more KEK version; this instance is left unchanged.</summary>
    public Keyring WithNewVersion()
    {
        var copy = new SortedDictionary<int, byte[]>();
        foreach (var (version, key) in _keks)
        {
            copy[version] = (byte[])key.Clone();
        }
        copy[CurrentVersion + 1] = RandomNumberGenerator.GetBytes(Aead.KeySize);
        return new Keyring(copy, (byte[])_hmacRoot.Clone());
    }

    /// <exception cref="DataIntegrityException">The record names a key version this keyring never had.</exception>
    public ReadOnlySpan<byte> Kek(int version) =>
        _keks.TryGetValue(version, out var key) ? key : throw new DataIntegrityException($"record is wrapped under unknown key version {version}");

    /// <summary>An HMAC key for one purpose (token hashes, audit), derived so purposes never share a key.</summary>
    public byte[] DeriveHmacKey(string purpose) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, _hmacRoot, 32, salt: [], info: Encoding.UTF8.GetBytes("vault-hmac:" + purpose));

    public byte[] Serialize()
    {
        var buffer = new byte[1 + 4 + _keks.Count * (4 + Aead.KeySize) + _hmacRoot.Length];
        var span = buffer.AsSpan();
        span[0] = FormatVersion;
        BinaryPrimitives.WriteInt32BigEndian(span[1..], _keks.Count);
        var offset = 5;
        foreach (var (version, key) in _keks)
        {
            BinaryPrimitives.WriteInt32BigEndian(span[offset..], version);
            key.CopyTo(span[(offset + 4)..]);
            offset += 4 + Aead.KeySize;
        }
        _hmacRoot.CopyTo(span[offset..]);
        return buffer;
    }

    public static Keyring Deserialize(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 5 || bytes[0] != FormatVersion)
        {
            throw new DataIntegrityException("keyring has an unknown format");
        }
        var count = BinaryPrimitives.ReadInt32BigEndian(bytes[1..]);
        if (count < 1 || bytes.Length != 5 + count * (4 + Aead.KeySize) + 32)
        {
            throw new DataIntegrityException("keyring is malformed");
        }
        var keks = new SortedDictionary<int, byte[]>();
        var offset = 5;
        for (var i = 0; i < count; i++)
        {
            keks[BinaryPrimitives.ReadInt32BigEndian(bytes[offset..])] = bytes.Slice(offset + 4, Aead.KeySize).ToArray();
            offset += 4 + Aead.KeySize;
        }
        return new Keyring(keks, bytes[offset..].ToArray());
    }

    public void Dispose()
    {
        foreach (var key in _keks.Values)
        {
            CryptographicOperations.ZeroMemory(key);
        }
        CryptographicOperations.ZeroMemory(_hmacRoot);
    }
}
