using System.Security.Cryptography;
using System.Text;
using Konscious.Security.Cryptography;

namespace Vault.Server.Crypto;

/// <summary>Derives the 256-bit unseal key from the operator's passphrase with Argon2id.</summary>
internal static class UnsealKeyDerivation
{
    public const int SaltSize = 16;

    public static byte[] Derive(string passphrase, byte[] salt, KdfParameters parameters)
    {
        var passphraseBytes = Encoding.UTF8.GetBytes(passphrase);
        try
        {
            using var argon = new Argon2id(passphraseBytes)
            {
                Salt = salt,
                MemorySize = parameters.MemoryKib,
                Iterations = parameters.Iterations,
                DegreeOfParallelism = parameters.Parallelism,
            };
            return argon.GetBytes(32);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(passphraseBytes);
        }
    }

    public static byte[] NewSalt() => RandomNumberGenerator.GetBytes(SaltSize);
}
