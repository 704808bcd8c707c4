using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Vault.Testing.Servers;

/// <summary>
/// One server process. It is launched through <c>/bin/sh</c> only to point its output at a file;
/// the shell and setpriv both exec, so <see cref="Id"/> is the server's own PID and signals reach it.
/// </summary>
internal sealed class ServerProcess : IDisposable
{
    private const string LaunchScript = "log=$1; shift; exec \"$@\" </dev/null >>\"$log\" 2>&1";

    private readonly Process _process;

    private ServerProcess(Process process) => _process = process;

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public static ServerProcess Start(string? user, IReadOnlyList<string> argv, string outputFile, string workingDirectory)
    {
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, WorkingDirectory = workingDirectory };
        foreach (var arg in (string[])["-c", LaunchScript, "server", outputFile, .. ServerHost.AsUser(user, argv)])
        {
            info.ArgumentList.Add(arg);
        }
        return new ServerProcess(Process.Start(info) ?? throw new InvalidOperationException($"could not start {argv[0]}"));
    }

    /// <summary>Sends <paramref name="signal"/> and waits for the exit; SIGKILL if it takes longer than <paramref name="grace"/>.</summary>
    public async Task StopAsync(Signal signal, TimeSpan grace)
    {
        if (!_process.HasExited && Kill(_process.Id, (int)signal) != 0 && !_process.HasExited)
        {
            throw new InvalidOperationException($"kill -{signal} {_process.Id} failed with errno {Marshal.GetLastPInvokeError()}");
        }
        using var timeout = new CancellationTokenSource(grace);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
    }

    public void Dispose() => _process.Dispose();

    // Process.Kill only knows SIGKILL; a clean stop needs the server's own shutdown signal.
    // DllImport, not LibraryImport: the generated stub would need AllowUnsafeBlocks for the whole test project.
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Kill(int pid, int signal);
}
