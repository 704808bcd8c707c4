using System.Diagnostics;
using System.Reflection;

namespace Vault.Benchmarks.Hosting;

/// <summary>
/// Parent side of <see cref="ServeCommand"/>: this executable started again as a server, its
/// address, and its CPU and memory as the kernel counts them.
/// </summary>
internal sealed class ChildServer : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(60);

    private readonly Process _process;
    private readonly Task _drain;

    private ChildServer(string name, Process process, Uri address, Task drain)
    {
        Name = name;
        _process = process;
        Address = address;
        _drain = drain;
    }

    public string Name { get; }

    public Uri Address { get; }

    public int Id => _process.Id;

    /// <summary>Starts <c>this-executable &lt;command&gt; args…</c> and waits for its address line.</summary>
    /// <exception cref="InvalidOperationException">The server exited or did not report an address in time.</exception>
    public static async Task<ChildServer> StartAsync(string command, IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var (fileName, prefix) = SelfCommand();
        var info = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            // Stderr is inherited: the server's warnings and errors appear beside our progress.
            RedirectStandardError = false,
        };
        foreach (var arg in (string[])[.. prefix, command, .. args])
        {
            info.ArgumentList.Add(arg);
        }
        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {fileName} {command}");
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(StartTimeout);
            string? line;
            do
            {
                line = await process.StandardOutput.ReadLineAsync(timeout.Token);
            }
            while (line is not null && !line.StartsWith(ServeCommand.ReadyPrefix, StringComparison.Ordinal));
            if (line is null)
            {
                await process.WaitForExitAsync(cancellationToken);
                throw new InvalidOperationException($"{command} exited with code {process.ExitCode} before it was listening (its stderr is above)");
            }
            var address = new Uri(line[ServeCommand.ReadyPrefix.Length..].Trim());
            // Nothing else is expected on stdout, but a full pipe would block the server: keep reading.
            var drain = Task.Run(async () =>
            {
                while (await process.StandardOutput.ReadLineAsync(CancellationToken.None) is { } more)
                {
                    await Console.Error.WriteLineAsync($"[{command}] {more}");
                }
            }, CancellationToken.None);
            return new ChildServer(command, process, address, drain);
        }
        catch
        {
            Kill(process);
            process.Dispose();
            throw;
        }
    }

    /// <summary>SIGKILL, as a crash: no shutdown at all (a failover's start). Returns once the process is gone.</summary>
    public void KillNow()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    /// <summary>User plus system CPU time the server has used since it started.</summary>
    public TimeSpan Cpu()
    {
        _process.Refresh();
        return _process.TotalProcessorTime;
    }

    /// <summary>
    /// Waits until the server is idle: under 5 % of a core over half a second (or 60 s have
    /// passed), so that work a setup step left behind (a store applying seeded writes in the
    /// background) is not billed to the rows that follow.
    /// </summary>
    /// <returns>How long it took.</returns>
    public async Task<TimeSpan> SettleAsync(CancellationToken cancellationToken)
    {
        var interval = TimeSpan.FromMilliseconds(500);
        var started = Stopwatch.GetTimestamp();
        var last = Cpu();
        while (Stopwatch.GetElapsedTime(started) < SettleTimeout)
        {
            await Task.Delay(interval, cancellationToken);
            var now = Cpu();
            if (now - last < interval * 0.05)
            {
                break;
            }
            last = now;
        }
        return Stopwatch.GetElapsedTime(started);
    }

    /// <summary>Closes the server's stdin so it shuts down cleanly; kills it if it takes too long.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            _process.StandardInput.Close();
            using var timeout = new CancellationTokenSource(StopTimeout);
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync($"{Name} (pid {Id}) did not stop within {StopTimeout.TotalSeconds:0} s: killing it");
            Kill(_process);
            await _process.WaitForExitAsync(CancellationToken.None);
        }
        await _drain;
        _process.Dispose();
    }

    private static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    // `dotnet Vault.Benchmarks.dll` runs under the host; the apphost (what `dotnet run` starts)
    // is the program itself. Either way the child is the same build as the parent.
    private static (string FileName, string[] Prefix) SelfCommand()
    {
        var processPath = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell which executable this is");
        return Path.GetFileNameWithoutExtension(processPath).Equals("dotnet", StringComparison.OrdinalIgnoreCase)
            ? (processPath, [Assembly.GetEntryAssembly()?.Location ?? throw new InvalidOperationException("no entry assembly")])
            : (processPath, []);
    }
}
