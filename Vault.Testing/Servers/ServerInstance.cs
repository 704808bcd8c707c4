using System.Diagnostics;
using System.Globalization;

namespace Vault.Testing.Servers;

/// <summary>
/// The life of one private server: its temp directory, its port, its process, and the watchdog
/// that cleans up if the test process dies first. The public fixtures prepare the data directory
/// and say how to run and probe the server (<see cref="ServerSpec"/>); this class does the rest.
/// </summary>
internal sealed class ServerInstance : IAsyncDisposable
{
    private const string PidFileName = "server.pid";
    private const int PortAttempts = 5;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan DisposeTimeout = TimeSpan.FromSeconds(10);

    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    private readonly ServerSpec _spec;
    private readonly Watchdog _watchdog;
    private ServerProcess? _process;
    private bool _disposed;

    private ServerInstance(ServerSpec spec, string directory, Watchdog watchdog)
    {
        _spec = spec;
        Directory = directory;
        _watchdog = watchdog;
    }

    public string Directory { get; }

    /// <summary>Chosen at the first start, kept across restarts (unless <see cref="ServerSpec.NewPortEachStart"/>).</summary>
    public int Port { get; private set; }

    public bool IsRunning => _process is { HasExited: false };

    /// <summary>The running process's id (to pause and resume it), or null.</summary>
    public int? ProcessId => _process?.Id;

    public string OutputPath => Path.Combine(Directory, _spec.OutputFile);

    private string PidPath => Path.Combine(Directory, PidFileName);

    public static async Task<ServerInstance> CreateAsync(ServerSpec spec, CancellationToken ct)
    {
        var directory = await ServerHost.CreateDirectoryAsync(spec.Kind, spec.User, ct);
        var watchdog = Watchdog.Start(directory, Path.Combine(directory, PidFileName), spec.DisposeSignal);
        return new ServerInstance(spec, directory, watchdog);
    }

    /// <summary>
    /// Starts the server and returns once a real login works. The first start picks a free port
    /// and, on the rare collision with another process that grabbed it meanwhile, tries another;
    /// later starts reuse the port.
    /// </summary>
    public async Task StartAsync(CancellationToken ct)
    {
        await _lifecycle.WaitAsync(ct);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (IsRunning)
            {
                throw new InvalidOperationException($"{_spec.Product} on port {Port} is already running");
            }
            // A server that died on its own still has its handle and PID file.
            await StopProcessAsync(_spec.DisposeSignal, DisposeTimeout);
            if (Port != 0 && !_spec.NewPortEachStart)
            {
                await LaunchAsync(ct);
                return;
            }
            for (var attempt = 1; ; attempt++)
            {
                Port = ServerHost.FreePort();
                try
                {
                    await LaunchAsync(ct);
                    return;
                }
                catch (PortInUseException) when (attempt < PortAttempts)
                {
                }
            }
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>A clean shutdown; the data directory stays for a restart.</summary>
    public async Task StopAsync()
    {
        await _lifecycle.WaitAsync();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            await StopProcessAsync(_spec.StopSignal, StopTimeout);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>SIGKILL, as a crash would: no shutdown at all; the data directory stays for a restart.</summary>
    public async Task KillAsync()
    {
        await _lifecycle.WaitAsync();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            await StopProcessAsync(Signal.Kill, StopTimeout);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _lifecycle.WaitAsync();
        try
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            await StopProcessAsync(_spec.DisposeSignal, DisposeTimeout);
            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
            catch (IOException)
            {
                // Something still holds a file: leave the directory to the watchdog, which
                // deletes it when the test process exits.
                return;
            }
            _watchdog.Disarm();
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    private async Task LaunchAsync(CancellationToken ct)
    {
        var logStart = ServerHost.ReadShared(OutputPath).Length;
        var clock = Stopwatch.StartNew();
        _process = ServerProcess.Start(_spec.User, _spec.CommandLine(Directory, Port), OutputPath, Directory);
        await File.WriteAllTextAsync(PidPath, _process.Id.ToString(CultureInfo.InvariantCulture), ct);
        try
        {
            while (true)
            {
                Exception probeError;
                try
                {
                    await _spec.Probe(Port, ct);
                    // A probe that needs no login cannot tell this server from another that took the
                    // port first (then this one is about to fail with "address in use"): where the
                    // server says what it listens on, this start's output must say this port.
                    if (_spec.Listening is not { } listening || listening(Port, ServerHost.ReadShared(OutputPath)[logStart..]))
                    {
                        return;
                    }
                    probeError = new IOException($"something answered on 127.0.0.1:{Port}, but this {_spec.Product} has not said it listens there");
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    probeError = ex;
                }
                if (_process.HasExited)
                {
                    var log = ServerHost.ReadShared(OutputPath);
                    var message = $"{_spec.Product} exited with code {_process.ExitCode} while starting on 127.0.0.1:{Port}. Its output ({OutputPath}):\n{ServerHost.Tail(log)}";
                    await StopProcessAsync(_spec.DisposeSignal, DisposeTimeout);
                    if (log.Length > logStart && log[logStart..].Contains("address already in use", StringComparison.OrdinalIgnoreCase))
                    {
                        throw new PortInUseException(message, probeError);
                    }
                    throw new InvalidOperationException(message, probeError);
                }
                if (clock.Elapsed > StartTimeout)
                {
                    await StopProcessAsync(_spec.DisposeSignal, DisposeTimeout);
                    throw new TimeoutException(
                        $"{_spec.Product} did not accept a login on 127.0.0.1:{Port} within {StartTimeout.TotalSeconds:0} s (last error: {probeError.Message}). Its output ({OutputPath}):\n{ServerHost.Tail(ServerHost.ReadShared(OutputPath))}",
                        probeError);
                }
                await Task.Delay(50, ct);
            }
        }
        catch (OperationCanceledException)
        {
            await StopProcessAsync(_spec.DisposeSignal, DisposeTimeout);
            throw;
        }
    }

    private async Task StopProcessAsync(Signal signal, TimeSpan grace)
    {
        if (_process is null)
        {
            return;
        }
        await _process.StopAsync(signal, grace);
        _process.Dispose();
        _process = null;
        File.Delete(PidPath);
    }

    private sealed class PortInUseException(string message, Exception inner) : Exception(message, inner);
}
