using Vault.Testing.Servers;
using Grpc.Core;
using Grpc.Net.Client;
using Vault.Protocol.V1;

namespace Vault.Benchmarks.Hosting;

/// <summary>
/// The real vault (VaultServerHost.Build: LiteDB store with durable group commit, barrier,
/// interceptor, audit log) in its own process (<c>serve-vault</c>) over a fresh data directory,
/// initialised and unsealed through SystemService. Root is used for setup only; measured calls
/// carry tokens made by <see cref="CreateTokenAsync"/>.
/// </summary>
internal sealed class BenchmarkVault : IAsyncDisposable
{
    private const string Passphrase = "benchmark passphrase, not a secret";

    /// <summary>
    /// The cheapest Argon2id the server accepts. It only makes init/unseal fast; no request in
    /// the measured loop derives a key, so it does not change the numbers.
    /// </summary>
    public static readonly KdfParameters CheapKdf = new() { MemoryKib = 8192, Iterations = 1, Parallelism = 2 };

    private readonly ChildServer _server;
    private readonly string _dataDir;
    private readonly GrpcChannel _channel;

    private BenchmarkVault(ChildServer server, string dataDir, GrpcChannel channel, Transport transport, string rootToken)
    {
        _server = server;
        _dataDir = dataDir;
        _channel = channel;
        Transport = transport;
        RootToken = rootToken;
    }

    public ChildServer Server => _server;

    public Uri Address => _server.Address;

    public Transport Transport { get; }

    public string RootToken { get; }

    /// <summary>Call metadata carrying the root token (setup only).</summary>
    public Metadata RootHeaders => Bearer(RootToken);

    /// <summary>A channel for setup calls (workloads open their own per row).</summary>
    public GrpcChannel SetupChannel => _channel;

    /// <param name="runDirectory">The run's temp directory; the vault's data directory is made under it and deleted on dispose.</param>
    /// <param name="metricsListen">Where the vault's metrics listener listens; null for none (no meter provider either).</param>
    /// <param name="storageConnectionFile">Records in PostgreSQL (this file's connection string) instead of the data directory.</param>
    /// <param name="node">One of several nodes on <paramref name="storageConnectionFile"/>'s database: its id and
    /// term, and the root token when another node initialised the vault (this one only unseals).</param>
    public static async Task<BenchmarkVault> StartAsync(string runDirectory, Transport transport, CancellationToken cancellationToken, string? metricsListen = null, string? storageConnectionFile = null,
        (string Id, TimeSpan Ttl, string? RootToken)? node = null)
    {
        var dataDir = Directory.CreateDirectory(Path.Combine(runDirectory, $"vault-{Guid.NewGuid():N}")).FullName;
        string[] metrics = metricsListen is null ? [] : ["--metrics-listen", metricsListen];
        string[] storage = storageConnectionFile is null ? [] : ["--storage-connection-file", storageConnectionFile];
        string[] cluster = node is { } n
            ? ["--node-id", n.Id, "--lease-ttl", n.Ttl.ToString("c", System.Globalization.CultureInfo.InvariantCulture), "--listen", $"127.0.0.1:{ServerHost.FreePort()}"]
            : [];
        var server = await ChildServer.StartAsync(ServeCommand.Vault, ["--data-dir", dataDir, "--target-ca-file", TestCertificates.RunCaFile, .. metrics, .. storage, .. cluster, .. transport.ServerArgs], cancellationToken);
        var channel = transport.OpenChannel(server.Address);
        try
        {
            var system = new SystemService.SystemServiceClient(channel);
            string root;
            if (node?.RootToken is { } joined)
            {
                // The vault exists: this node unseals once it sees it.
                while (!(await system.StatusAsync(new StatusRequest(), cancellationToken: cancellationToken)).Initialized)
                {
                    await Task.Delay(50, cancellationToken);
                }
                root = joined;
            }
            else
            {
                root = (await system.InitAsync(new InitRequest { Passphrase = Passphrase, Kdf = CheapKdf }, cancellationToken: cancellationToken)).RootToken;
            }
            var status = await system.StatusAsync(new StatusRequest(), cancellationToken: cancellationToken);
            if (status.Sealed)
            {
                await system.UnsealAsync(new UnsealRequest { Passphrase = Passphrase }, cancellationToken: cancellationToken);
            }
            return new BenchmarkVault(server, dataDir, channel, transport, root);
        }
        catch
        {
            channel.Dispose();
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Puts a policy with exactly <paramref name="rules"/> and returns the metadata of a new token
    /// holding only it, so that every measured call pays the policy evaluation an application's
    /// token would.
    /// </summary>
    public async Task<Metadata> CreateTokenAsync(string policy, IEnumerable<PolicyRule> rules, CancellationToken cancellationToken)
    {
        await new PolicyService.PolicyServiceClient(_channel).PutAsync(
            new PutPolicyRequest { Policy = new Policy { Name = policy, Rules = { rules } } }, RootHeaders, cancellationToken: cancellationToken);
        var created = await new TokenService.TokenServiceClient(_channel).CreateAsync(
            new CreateTokenRequest { Policies = { policy }, DisplayName = policy, Ttl = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromHours(12)) },
            RootHeaders,
            cancellationToken: cancellationToken);
        return Bearer(created.Token);
    }

    public static PolicyRule Rule(string path, params string[] capabilities) => new() { Path = path, Capabilities = { capabilities } };

    public async ValueTask DisposeAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: the run directory is deleted at the end anyway.
        }
    }

    private static Metadata Bearer(string token) => new() { { "authorization", $"Bearer {token}" } };
}
