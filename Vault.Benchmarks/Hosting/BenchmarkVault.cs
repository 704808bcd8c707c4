using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Vault.Protocol.V1;
using Vault.Server.Hosting;

namespace Vault.Benchmarks.Hosting;

/// <summary>
/// The real vault (VaultServerHost.Build, LiteDB store with durable group commit) in this
/// process over a temporary data directory, initialised and unsealed.
/// </summary>
internal sealed class BenchmarkVault : IAsyncDisposable
{
    private const string Passphrase = "benchmark passphrase, not a secret";

    /// <summary>
    /// The cheapest Argon2id the server accepts. It only makes init/unseal fast; no request in
    /// the measured loop derives a key, so it does not change the numbers.
    /// </summary>
    public static readonly KdfParameters CheapKdf = new() { MemoryKib = 8192, Iterations = 1, Parallelism = 2 };

    private readonly WebApplication _app;

    private BenchmarkVault(WebApplication app, string dataDir, Uri address, string rootToken)
    {
        _app = app;
        DataDir = dataDir;
        Address = address;
        RootToken = rootToken;
    }

    public string DataDir { get; }

    public Uri Address { get; }

    public string RootToken { get; }

    public static async Task<BenchmarkVault> StartAsync(CancellationToken cancellationToken)
    {
        var dataDir = Directory.CreateTempSubdirectory("vault-bench-").FullName;
        var app = VaultServerHost.Build(["--data-dir", dataDir, "--listen", "127.0.0.1:0"], builder => HostAddress.QuietLogging(builder.Logging));
        await app.StartAsync(cancellationToken);
        var address = HostAddress.Of(app);
        using var channel = GrpcChannel.ForAddress(address);
        var system = new SystemService.SystemServiceClient(channel);
        var init = await system.InitAsync(new InitRequest { Passphrase = Passphrase, Kdf = CheapKdf }, cancellationToken: cancellationToken);
        var status = await system.StatusAsync(new StatusRequest(), cancellationToken: cancellationToken);
        if (status.Sealed)
        {
            await system.UnsealAsync(new UnsealRequest { Passphrase = Passphrase }, cancellationToken: cancellationToken);
        }
        return new BenchmarkVault(app, dataDir, address, init.RootToken);
    }

    /// <summary>Call metadata carrying the root token.</summary>
    public Metadata RootHeaders() => new() { { "authorization", $"Bearer {RootToken}" } };

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        try
        {
            await _app.DisposeAsync();
        }
        catch (ObjectDisposedException ex)
        {
            // LiteDbStore.Dispose can throw here once its LiteDB engine has failed (see
            // docs/BENCHMARKS.md). The run's results are already taken; say so and go on.
            await Console.Error.WriteLineAsync($"vault shutdown failed: {ex.Message}");
        }
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: the directory is unique to this run and lives under the temp path.
        }
    }
}
