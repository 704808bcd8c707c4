using System.Security.Cryptography;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Vault.Server.Auth;
using Vault.Server.Crypto;

namespace Vault.Server.Hosting;

/// <summary>
/// Dev mode: initialise and unseal a fresh vault at start-up and print the root token and the
/// unseal passphrase to standard output (never to the log). For trying things out only.
/// </summary>
public sealed class DevModeInitializer(SecurityBarrier barrier, TokenManager tokens, IOptions<VaultServerOptions> options, IHostApplicationLifetime lifetime) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        if (!o.Dev || barrier.IsInitialized)
        {
            return;
        }
        var passphrase = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
        var (token, _) = await VaultInitializer.InitializeAsync(barrier, tokens, passphrase,
            new KdfParameters(o.KdfMemoryKib, o.KdfIterations, o.KdfParallelism), o.DevRootToken, cancellationToken);
        lifetime.ApplicationStarted.Register(() =>
        {
            Console.Out.WriteLine($"""

                Vault dev server: initialised and unsealed. Data dir: {o.DataDir}{(o.DataDirIsTemporary ? " (deleted on exit)" : "")}
                Do not run dev mode in production.

                    Listen:            {o.Listen} (plaintext HTTP/2)
                    Unseal passphrase: {passphrase}
                    Root token:        {token}

                    export VAULT_ADDR=http://{o.Listen}
                    export VAULT_TOKEN={token}

                """);
            Console.Out.Flush();
        });
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
