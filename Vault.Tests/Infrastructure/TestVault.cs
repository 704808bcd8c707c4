using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Vault.Protocol.V1;
using Vault.Server.Hosting;

namespace Vault.Tests.Infrastructure;

/// <summary>
/// A real vault server (Kestrel, HTTP/2 on a free loopback port) in this process, over its own
/// data directory. Initialised and unsealed by <see cref="StartInitializedAsync"/>; can be
/// restarted over the same directory to check what survives.
/// </summary>
public sealed class TestVault : IAsyncDisposable
{
    public const string Passphrase = "correct horse battery staple";
    private readonly Action<WebApplicationBuilder>? _configure;
    private WebApplication? _app;
    private GrpcChannel? _channel;

    private TestVault(string dataDir, string[] extraArgs, Action<WebApplicationBuilder>? configure = null)
    {
        DataDir = dataDir;
        ExtraArgs = extraArgs;
        _configure = configure;
    }

    public string DataDir { get; }

    public string[] ExtraArgs { get; }

    /// <summary>e.g. http://127.0.0.1:40123</summary>
    public string Address { get; private set; } = "";

    public string RootToken { get; private set; } = "";

    public GrpcChannel Channel => _channel ?? throw new InvalidOperationException("server not started");

    public IServiceProvider Services => _app?.Services ?? throw new InvalidOperationException("server not started");

    public SystemService.SystemServiceClient System => new(Channel);
    public KvService.KvServiceClient Kv => new(Channel);
    public TokenService.TokenServiceClient Tokens => new(Channel);
    public PolicyService.PolicyServiceClient Policies => new(Channel);

    /// <summary>Starts an uninitialised server over a fresh temporary directory.</summary>
    public static async Task<TestVault> StartAsync(params string[] extraArgs)
    {
        var vault = new TestVault(Directory.CreateTempSubdirectory("vault-test-").FullName, extraArgs);
        await vault.StartServerAsync();
        return vault;
    }

    /// <summary>Starts, initialises (cheap Argon2 parameters) and unseals a fresh server.</summary>
    public static Task<TestVault> StartInitializedAsync(params string[] extraArgs) => StartInitializedAsync(configure: null, extraArgs);

    /// <summary>As <see cref="StartInitializedAsync(string[])"/>, with <paramref name="configure"/> applied to the host
    /// builder on every start (after the test defaults, e.g. to add a logger provider).</summary>
    public static async Task<TestVault> StartInitializedAsync(Action<WebApplicationBuilder>? configure, params string[] extraArgs)
    {
        var vault = new TestVault(Directory.CreateTempSubdirectory("vault-test-").FullName, extraArgs, configure);
        await vault.StartServerAsync();
        var init = await vault.System.InitAsync(new InitRequest { Passphrase = Passphrase, Kdf = FastKdf });
        vault.RootToken = init.RootToken;
        return vault;
    }

    /// <summary>
    /// As <see cref="StartInitializedAsync(string[])"/>, on <paramref name="clock"/>: TTLs, the
    /// scheduler and the reaper move only when the test moves the clock. Read-only audit entries are
    /// made durable before their replies (a zero window), so nothing waits for the clock on its own.
    /// </summary>
    public static Task<TestVault> StartInitializedOnAsync(Microsoft.Extensions.Time.Testing.FakeTimeProvider clock, params string[] extraArgs) =>
        StartInitializedAsync(On(clock), [NoReadOnlyFlushWindow, .. extraArgs]);

    // What a server on a fake clock is started with (see StartInitializedOnAsync).
    private const string NoReadOnlyFlushWindow = "--Vault:AuditReadOnlyFlushWindow=00:00:00";

    private static Action<WebApplicationBuilder> On(Microsoft.Extensions.Time.Testing.FakeTimeProvider clock) =>
        builder => builder.Services.AddSingleton<TimeProvider>(clock);

    /// <summary>Starts, initialises and unseals a server over <paramref name="dataDir"/> (which the test owns, e.g. a small filesystem).</summary>
    public static async Task<TestVault> StartInitializedInAsync(string dataDir, params string[] extraArgs)
    {
        var vault = new TestVault(dataDir, extraArgs);
        await vault.StartServerAsync();
        var init = await vault.System.InitAsync(new InitRequest { Passphrase = Passphrase, Kdf = FastKdf });
        vault.RootToken = init.RootToken;
        return vault;
    }

    /// <summary>Starts a server over an existing data directory (sealed); <paramref name="rootToken"/> is the token it was initialised with.</summary>
    public static Task<TestVault> OpenAsync(string dataDir, string rootToken, params string[] extraArgs) =>
        OpenWithAsync(dataDir, rootToken, configure: null, extraArgs);

    /// <summary>
    /// As <see cref="OpenAsync"/>, on <paramref name="clock"/> as in <see cref="StartInitializedOnAsync"/>:
    /// for a data directory written at a known moment, whose TTLs run from then.
    /// </summary>
    public static Task<TestVault> OpenOnAsync(string dataDir, string rootToken, Microsoft.Extensions.Time.Testing.FakeTimeProvider clock, params string[] extraArgs) =>
        OpenWithAsync(dataDir, rootToken, On(clock), [NoReadOnlyFlushWindow, .. extraArgs]);

    private static async Task<TestVault> OpenWithAsync(string dataDir, string rootToken, Action<WebApplicationBuilder>? configure, string[] extraArgs)
    {
        var vault = new TestVault(dataDir, extraArgs, configure) { RootToken = rootToken };
        await vault.StartServerAsync();
        return vault;
    }

    /// <summary>Moves every acknowledged change into the data file now (as the store's applier would, later).</summary>
    public void FlushStore() => ((Vault.Server.Storage.LiteDbStore)Services.GetRequiredService<Vault.Server.Storage.IVaultStore>()).Flush();

    /// <summary>Argon2id parameters cheap enough for tests (the minimum the server accepts).</summary>
    public static Protocol.V1.KdfParameters FastKdf => new() { MemoryKib = 8192, Iterations = 1, Parallelism = 2 };

    /// <summary>Call options carrying <paramref name="token"/> (the root token by default).</summary>
    public CallOptions As(string? token = null) =>
        new(new Metadata { { "authorization", $"Bearer {token ?? RootToken}" } });

    /// <summary>Stops the server (a clean shutdown) and starts it again over the same data directory; it comes up sealed.</summary>
    /// <param name="whileStopped">Runs while no server has the data directory open (e.g. to tamper with the file).</param>
    public async Task RestartAsync(Action? whileStopped = null)
    {
        await StopServerAsync();
        whileStopped?.Invoke();
        await StartServerAsync();
    }

    /// <summary>As <see cref="RestartAsync(Action?)"/>, with asynchronous work while stopped (e.g. running a tool over the data directory).</summary>
    public async Task RestartAsync(Func<Task> whileStopped)
    {
        await StopServerAsync();
        await whileStopped();
        await StartServerAsync();
    }

    public async Task UnsealAsync() => await System.UnsealAsync(new UnsealRequest { Passphrase = Passphrase });

    public async ValueTask DisposeAsync()
    {
        await StopServerAsync();
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: the temp directory is unique to this test.
        }
    }

    private async Task StartServerAsync()
    {
        // A 1 MiB disk reserve rather than the 64 MiB default: hundreds of test servers each write
        // theirs. A test's own setting comes later and wins.
        // Targets on the fixtures' servers (certificates from the run's CA) are verified like any other.
        string[] args = ["--data-dir", DataDir, "--listen", "127.0.0.1:0", "--Vault:ReservedDiskBytes=1048576", $"--Vault:Rotation:TargetCaFile={TestCertificates.RunCaFile}", .. ExtraArgs];
        _app = VaultServerHost.Build(args, builder =>
        {
            // VAULT_TEST_LOG=1 keeps the console logger, to see why a test's server answered INTERNAL.
            if (Environment.GetEnvironmentVariable("VAULT_TEST_LOG") != "1")
            {
                builder.Logging.ClearProviders();
            }
            _configure?.Invoke(builder);
        });
        await _app.StartAsync();
        var addresses = _app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
        Address = addresses.First().Replace("[::]", "127.0.0.1", StringComparison.Ordinal);
        _channel = GrpcChannel.ForAddress(Address);
    }

    private async Task StopServerAsync()
    {
        _channel?.Dispose();
        _channel = null;
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }
    }
}
