using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Grpc.Core;
using Grpc.Net.Client;
using Vault.Protocol.V1;

namespace Vault.Testing;

/// <summary>
/// The real server as a separate process (<c>dotnet Vault.Server.dll</c>), so tests can kill it
/// with SIGKILL and restart it over the same data directory.
/// </summary>
public sealed class VaultProcess : IAsyncDisposable
{
    private readonly StringBuilder _output = new();
    private Process? _process;
    private GrpcChannel? _channel;

    public VaultProcess(string dataDir) => DataDir = dataDir;

    public string DataDir { get; }

    public string Address { get; private set; } = "";

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public GrpcChannel Channel => _channel ?? throw new InvalidOperationException("not started");

    public async Task StartAsync(params string[] extraArgs)
    {
        var port = FreePort();
        Address = $"http://127.0.0.1:{port}";
        var serverDll = Path.Combine(AppContext.BaseDirectory, "Vault.Server.dll");
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in (string[])[serverDll, "--data-dir", DataDir, "--listen", $"127.0.0.1:{port}", .. extraArgs])
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["Logging__LogLevel__Default"] = "Debug";
        _process = Process.Start(info) ?? throw new InvalidOperationException("could not start the server");
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        // A fresh channel per attempt: a channel that saw "connection refused" backs off for
        // longer and longer, and would miss a server that is slow to start on a busy machine.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var channel = GrpcChannel.ForAddress(Address);
            try
            {
                await new SystemService.SystemServiceClient(channel).StatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(5));
                _channel = channel;
                return;
            }
            catch (RpcException ex)
            {
                channel.Dispose();
                if (DateTime.UtcNow >= deadline || _process.HasExited)
                {
                    throw new InvalidOperationException($"server did not come up ({ex.Status.Detail}); output:\n{Output}");
                }
                await Task.Delay(100);
            }
        }
    }

    /// <summary>
    /// Runs the server with exactly <paramref name="args"/> (no data directory or address added)
    /// until it exits by itself, e.g. because it refused to start; killed after 60 s.
    /// </summary>
    public static Task<ExitedProcess> RunToExitAsync(IReadOnlyDictionary<string, string> environment, params string[] args) =>
        RunToExitWithInputAsync(environment, stdin: "", args);

    /// <summary>As <see cref="RunToExitAsync"/>, with <paramref name="stdin"/> as its (redirected) standard input.</summary>
    /// <remarks>A name of its own: as an overload, a call passing plain string arguments would bind its first one to <paramref name="stdin"/>.</remarks>
    public static async Task<ExitedProcess> RunToExitWithInputAsync(IReadOnlyDictionary<string, string> environment, string stdin, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Vault.Server.dll"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start the server");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"server did not exit within 60 s; output:\n{await stdout}\n{await stderr}");
        }
        return new ExitedProcess(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>SIGKILL: no shutdown hooks, no flush.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _channel?.Dispose();
        _channel = null;
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process?.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>What a server process that ran to its end left behind.</summary>
public sealed record ExitedProcess(int ExitCode, string Stdout, string Stderr);
