using System.Security.Cryptography;
using Vault.Server.Crypto;

namespace Vault.Server.Identity;

/// <summary>
/// Password hashes for human logins: Argon2id with the vault's own KDF settings scaled for a login
/// (a quarter of the memory, at least 8 MiB, one lane: a login must not cost what an unseal does,
/// and many may run at once), then an HMAC under a key derived from the keyring. The data file
/// holds the parameters, the salt and that HMAC, so without the keyring it cannot be used to test
/// a guess. At most one derivation per core runs at once, so a burst of logins queues instead of
/// exhausting memory.
/// </summary>
public sealed class PasswordHasher(SecurityBarrier barrier) : IDisposable
{
    private const string HmacPurpose = "userpass-password";
    private const string Scheme = "argon2id";
    private readonly SemaphoreSlim _slots = new(Math.Max(1, Environment.ProcessorCount));

    /// <summary>The Argon2id parameters of a login, given the vault's.</summary>
    public static KdfParameters ForLogins(KdfParameters vault) => new(Math.Max(8 * 1024, vault.MemoryKib / 4), vault.Iterations, 1);

    /// <summary>A new hash of <paramref name="password"/> with a fresh salt, in the form <c>argon2id$m=…,t=…,p=…$salt$mac</c>.</summary>
    public async Task<string> HashAsync(string password, CancellationToken cancellationToken)
    {
        var kdf = ForLogins(barrier.StoredKdf ?? KdfParameters.Default);
        var salt = RandomNumberGenerator.GetBytes(UnsealKeyDerivation.SaltSize);
        var mac = await DeriveAsync(password, salt, kdf, cancellationToken);
        return $"{Scheme}$m={kdf.MemoryKib},t={kdf.Iterations},p={kdf.Parallelism}${Convert.ToBase64String(salt)}${Convert.ToBase64String(mac)}";
    }

    /// <summary>Whether <paramref name="password"/> is the one <paramref name="stored"/> was made from.</summary>
    /// <exception cref="DataIntegrityException"><paramref name="stored"/> is not a hash this vault writes.</exception>
    public async Task<bool> VerifyAsync(string password, string stored, CancellationToken cancellationToken)
    {
        var (kdf, salt, expected) = Parse(stored);
        var mac = await DeriveAsync(password, salt, kdf, cancellationToken);
        return CryptographicOperations.FixedTimeEquals(mac, expected);
    }

    /// <summary>Spends what a verification spends, for a login whose user does not exist: the time taken does not say so.</summary>
    public Task SpendAsync(string password, CancellationToken cancellationToken) =>
        DeriveAsync(password, RandomNumberGenerator.GetBytes(UnsealKeyDerivation.SaltSize), ForLogins(barrier.StoredKdf ?? KdfParameters.Default), cancellationToken);

    private async Task<byte[]> DeriveAsync(string password, byte[] salt, KdfParameters kdf, CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken);
        try
        {
            return await Task.Run(() =>
            {
                var raw = UnsealKeyDerivation.Derive(password, salt, kdf);
                try
                {
                    return barrier.Hmac(HmacPurpose, raw);
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(raw);
                }
            }, cancellationToken);
        }
        finally
        {
            _slots.Release();
        }
    }

    private static (KdfParameters Kdf, byte[] Salt, byte[] Mac) Parse(string stored)
    {
        var parts = stored.Split('$');
        try
        {
            if (parts is [Scheme, var cost, var salt, var mac])
            {
                var values = cost.Split(',').Select(p => p.Split('=')).ToDictionary(p => p[0], p => int.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture));
                return (new KdfParameters(values["m"], values["t"], values["p"]), Convert.FromBase64String(salt), Convert.FromBase64String(mac));
            }
        }
        catch (Exception ex) when (ex is FormatException or KeyNotFoundException or IndexOutOfRangeException or OverflowException or ArgumentException)
        {
        }
        throw new DataIntegrityException("a stored password hash is not in the form this vault writes");
    }

    public void Dispose() => _slots.Dispose();
}
