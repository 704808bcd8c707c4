namespace Vault.Server.Crypto;

/// <summary>Argon2id cost parameters, stored beside the wrapped keyring.</summary>
/// <param name="MemoryKib">Memory in KiB; RFC 9106's second recommended choice is 64 MiB.</param>
/// <param name="Iterations">Passes over memory.</param>
/// <param name="Parallelism">Lanes; fixed, never derived from the core count, so a restore on
/// another machine derives the same key.</param>
public sealed record KdfParameters(int MemoryKib, int Iterations, int Parallelism)
{
    /// <summary>m=64 MiB, t=3, p=2 (RFC 9106, second recommended option).</summary>
    public static KdfParameters Default { get; } = new(64 * 1024, 3, 2);

    /// <summary>Rejects parameters too weak to protect a passphrase, or absurdly large.</summary>
    public void Validate()
    {
        if (MemoryKib < 8 * 1024 || MemoryKib > 4 * 1024 * 1024)
        {
            throw new ValidationException("kdf.memory_kib", "must be between 8192 and 4194304");
        }
        if (Iterations < 1 || Iterations > 64)
        {
            throw new ValidationException("kdf.iterations", "must be between 1 and 64");
        }
        if (Parallelism < 1 || Parallelism > 16)
        {
            throw new ValidationException("kdf.parallelism", "must be between 1 and 16");
        }
    }
}
