using Xunit;

namespace Vault.Testing.Servers;

/// <summary>
/// What every private server fixture (<see cref="PostgresServer"/>, <see cref="MariaDbServer"/>,
/// <see cref="LdapServer"/>) offers the same way, over its <see cref="ServerInstance"/>: the
/// address, stop, kill (SIGKILL, as a crash would: committed writes survive and the restart runs
/// the server's own recovery), restart on the same port and data, and dispose. Each kind prepares
/// its data directory and says how to run and probe the server in <see cref="InitializeAsync"/>.
/// </summary>
public abstract class ServerFixture : IAsyncLifetime, IAsyncDisposable
{
    private ServerInstance? _instance;

    public string Host => "127.0.0.1";

    public int Port => _instance?.Port ?? 0;

    /// <summary>Whether the server process is up (false after <see cref="StopAsync"/>).</summary>
    public bool IsRunning => _instance?.IsRunning ?? false;

    /// <summary>The server's own output so far (its log, or stderr).</summary>
    public string LogText() => _instance is null ? "" : ServerHost.ReadShared(_instance.OutputPath);

    /// <summary>Stops the server (clean shutdown) and keeps its data: the server is down until <see cref="RestartAsync"/>.</summary>
    public Task StopAsync() => Instance.StopAsync();

    /// <summary>Kills the server with SIGKILL, as a crash would; the next <see cref="RestartAsync"/> recovers.</summary>
    public Task KillAsync() => Instance.KillAsync();

    /// <summary>Starts the server again on the same port and data (stopping it first if it runs).</summary>
    public async Task RestartAsync()
    {
        if (Instance.IsRunning)
        {
            await Instance.StopAsync();
        }
        await Instance.StartAsync(CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        if (_instance is not null)
        {
            await _instance.DisposeAsync();
        }
        GC.SuppressFinalize(this);
    }

    Task IAsyncLifetime.InitializeAsync() => InitializeAsync(CancellationToken.None);

    Task IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();

    /// <summary>The temp directory with the data and logs (for the fixture's own tests).</summary>
    internal string Directory => Instance.Directory;

    private protected ServerInstance Instance
    {
        get => _instance ?? throw new InvalidOperationException("the server has not been started");
        set => _instance = value;
    }

    /// <summary>The started instance, or null before <see cref="InitializeAsync"/> made it.</summary>
    private protected ServerInstance? InstanceOrNull => _instance;

    /// <summary>Creates the instance (<see cref="Instance"/>), prepares its data and starts it.</summary>
    private protected abstract Task InitializeAsync(CancellationToken ct);

    /// <summary>Starts <paramref name="server"/>; disposes it again if it does not start.</summary>
    private protected static async Task<T> StartNewAsync<T>(T server, CancellationToken ct)
        where T : ServerFixture
    {
        try
        {
            await server.InitializeAsync(ct);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }
}
