using System.Security.Cryptography;

namespace Vault.Server.Crypto;

/// <summary>
/// AES-256-GCM with a random 96-bit nonce. Output layout: nonce (12) | ciphertext | tag (16).
/// Every caller passes associated data naming what the bytes are, so a blob moved to another
/// record fails to open.
/// </summary>
internal static class Aead
{
    public const int KeySize = 32;
    public const int NonceSize = 12;
    public const int TagSize = 16;
    public const int Overhead = NonceSize + TagSize;

    public static byte[] Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        using var gcm = new AesGcm(key, TagSize);
        return Seal(gcm, plaintext, associatedData);
    }

    public static byte[] Seal(AesGcm gcm, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        var output = new byte[Overhead + plaintext.Length];
        var nonce = output.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        gcm.Encrypt(nonce, plaintext, output.AsSpan(NonceSize, plaintext.Length), output.AsSpan(NonceSize + plaintext.Length, TagSize), associatedData);
        return output;
    }

    public static byte[] Open(ReadOnlySpan<byte> key, ReadOnlySpan<byte> sealedBytes, ReadOnlySpan<byte> associatedData)
    {
        using var gcm = new AesGcm(key, TagSize);
        return Open(gcm, sealedBytes, associatedData);
    }

    /// <exception cref="DataIntegrityException">The bytes, or the identity they are bound to, were altered.</exception>
    public static byte[] Open(AesGcm gcm, ReadOnlySpan<byte> sealedBytes, ReadOnlySpan<byte> associatedData)
    {
        if (sealedBytes.Length < Overhead)
        {
            throw new DataIntegrityException("stored ciphertext is truncated");
        }
        var length = sealedBytes.Length - Overhead;
        var plaintext = new byte[length];
        try
        {
            gcm.Decrypt(sealedBytes[..NonceSize], sealedBytes.Slice(NonceSize, length), sealedBytes.Slice(NonceSize + length, TagSize), plaintext, associatedData);
        }
        catch (AuthenticationTagMismatchException ex)
        {
            throw new DataIntegrityException("stored ciphertext failed authentication", ex);
        }
        return plaintext;
    }
}
