using Vault.Server.Auth;
using Vault.Server.Crypto;

namespace Vault.Server.Hosting;

/// <summary>Init: create the keyring, then the root token.</summary>
public static class VaultInitializer
{
    public static async Task<(string Token, TokenRecord Record)> InitializeAsync(SecurityBarrier barrier, TokenManager tokens, string passphrase,
        KdfParameters kdf, string? rootToken, CancellationToken cancellationToken)
    {
        await barrier.InitializeAsync(passphrase, kdf, cancellationToken);
        return await tokens.CreateRootAsync(rootToken, cancellationToken);
    }
}
