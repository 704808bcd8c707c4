using Grpc.Net.Client;
using Vault.Protocol.V1;
using Vault.Testing.Servers;

namespace Vault.Testing;

/// <summary>
/// The real server as a separate process (<c>dotnet Vault.Server.dll</c>), so tests can kill it
/// with SIGKILL and restart it over the same data directory. Its life is a
/// <see cref="ServerInstance"/>'s, like the database servers': a new port at every start, its
/// output in a file, and a watchdog that kills it if the test process dies first.
/// </summary>
public sealed class VaultProcess : IAsyncDisposable
{
    private static readonly string ServerDll = Path.Combine(AppContext.BaseDirectory, "Vault.Server.dll");
    private ServerInstance? _instance;
    private string[] _extraArgs = [];
    private GrpcChannel? _channel;

    public VaultProcess(string dataDir) => DataDir = dataDir;

    public string DataDir { get; }

    public string Address { get; private set; } = "";

    /// <summary>Everything the server has written to stdout and stderr, every start included.</summary>
    public string Output => _instance is null ? "" : ServerHost.ReadShared(_instance.OutputPath);

    public GrpcChannel Channel => _channel ?? throw new InvalidOperationException("not started");

    /// <summary>
    /// Starts the server (again) over <see cref="DataDir"/> with <paramref name="extraArgs"/> and
    /// returns once it answers. <c>{port}</c> in an argument is the port this start listens on.
    /// </summary>
    public async Task StartAsync(params string[] extraArgs)
    {
        _extraArgs = extraArgs;
        _instance ??= await ServerInstance.CreateAsync(Spec(), CancellationToken.None);
        await _instance.StartAsync(CancellationToken.None);
        Address = $"http://127.0.0.1:{_instance.Port}";
        _channel = GrpcChannel.ForAddress(Address);
    }

    private ServerSpec Spec() => new(
        Kind: "vault",
        Product: "the vault server",
        User: null,
        OutputFile: "vault.log",
        StopSignal: Signal.Term,
        DisposeSignal: Signal.Kill,
        CommandLine: (_, port) => ["dotnet", ServerDll, "--data-dir", DataDir, "--listen", $"127.0.0.1:{port}", "--Logging:LogLevel:Default=Debug",
            // Targets on the fixtures' servers (certificates from the run's CA) are verified like any other.
            $"--Vault:Rotation:TargetCaFile={TestCertificates.RunCaFile}",
            .. _extraArgs.Select(a => a.Replace("{port}", port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal))],
        Probe: ProbeAsync,
        // The probe's status call needs no login, so it cannot tell this vault from another
        // test's that took the port while this one was down: a new port at every start.
        NewPortEachStart: true,
        // Kestrel's start-up line (logged at Information): this process, not another, holds the port.
        Listening: (port, output) => output.Contains($"Now listening on: http://127.0.0.1:{port}", StringComparison.Ordinal)
            || output.Contains($"Now listening on: https://127.0.0.1:{port}", StringComparison.Ordinal));

    private static async Task ProbeAsync(int port, CancellationToken cancellationToken)
    {
        // A fresh channel per attempt: a channel that saw "connection refused" backs off for
        // longer and longer, and would miss a server that is slow to start on a busy machine.
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        await new SystemService.SystemServiceClient(channel).StatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: cancellationToken);
    }

    /// <summary>
    /// Runs the server with exactly <paramref name="args"/> (no data directory or address added)
    /// until it exits by itself, e.g. because it refused to start; killed after 60 s.
    /// </summary>
    public static Task<ExitedProcess> RunToExitAsync(IReadOnlyDictionary<string, string> environment, params string[] args) =>
        RunToExitWithInputAsync(environment, stdin: "", args);

    /// <summary>As <see cref="RunToExitAsync"/>, with <paramref name="stdin"/> as its (redirected) standard input.</summary>
    /// <remarks>A name of its own: as an overload, a call passing plain string arguments would bind its first one to <paramref name="stdin"/>.</remarks>
    public static Task<ExitedProcess> RunToExitWithInputAsync(IReadOnlyDictionary<string, string> environment, string stdin, params string[] args) =>
        ExitedProcess.RunAsync("dotnet", [ServerDll, .. args], environment.Select(e => KeyValuePair.Create(e.Key, (string?)e.Value)), stdin, TimeSpan.FromSeconds(60));

    /// <summary>SIGSTOP: the process stands still, its connections open, until <see cref="ResumeAsync"/>.</summary>
    public Task PauseAsync() => SendAsync("-STOP");

    /// <summary>SIGCONT after <see cref="PauseAsync"/>.</summary>
    public Task ResumeAsync() => SendAsync("-CONT");

    private async Task SendAsync(string signal)
    {
        var pid = _instance?.ProcessId ?? throw new InvalidOperationException("not running");
        using var kill = System.Diagnostics.Process.Start("kill", [signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill {signal} {pid} exited {kill.ExitCode}");
        }
    }

    /// <summary>A clean stop (SIGTERM); the data directory stays for a restart.</summary>
    public async Task StopAsync()
    {
        if (_instance is not null)
        {
            await _instance.StopAsync();
        }
        _channel?.Dispose();
        _channel = null;
    }

    /// <summary>SIGKILL: no shutdown hooks, no flush; the data directory stays for a restart.</summary>
    public async Task KillAsync()
    {
        // Killed first: calls in flight on the channel then fail as a dead server's would
        // (UNAVAILABLE), not with ObjectDisposedException.
        if (_instance is not null)
        {
            await _instance.KillAsync();
        }
        _channel?.Dispose();
        _channel = null;
    }

    public async ValueTask DisposeAsync()
    {
        _channel?.Dispose();
        _channel = null;
        if (_instance is not null)
        {
            await _instance.DisposeAsync();
        }
    }
}
