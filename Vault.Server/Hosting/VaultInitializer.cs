using Vault.Server.Auth;
using Vault.Server.Crypto;

namespace Vault.Server.Hosting;

/// <summary>Init: the keyring and the root token, in one unit of work.</summary>
public static class VaultInitializer
{
    public static async Task<(string Token, TokenRecord Record)> InitializeAsync(SecurityBarrier barrier, TokenManager tokens, string passphrase,
        KdfParameters kdf, string? rootToken, CancellationToken cancellationToken)
    {
        var (token, record) = tokens.NewRoot(rootToken);
        await barrier.InitializeAsync(passphrase, kdf, (tx, hmac) => TokenManager.Write(tx, hmac, TokenManager.HashWith(hmac, token), record), cancellationToken);
        return (token, record);
    }

    /// <summary>As <see cref="InitializeAsync"/>, with a random unseal key split into key shares.</summary>
    public static async Task<(string Token, TokenRecord Record, byte[][] Shares)> InitializeWithSharesAsync(SecurityBarrier barrier, TokenManager tokens, int shares, int threshold,
        CancellationToken cancellationToken)
    {
        var (token, record) = tokens.NewRoot(null);
        var split = await barrier.InitializeWithSharesAsync(shares, threshold, (tx, hmac) => TokenManager.Write(tx, hmac, TokenManager.HashWith(hmac, token), record), cancellationToken);
        return (token, record, split);
    }
}
