using System.Diagnostics;

namespace Vault.Testing.Servers;

/// <summary>
/// Cleans up after a test process that died without disposing its servers (killed, crashed, hung
/// and aborted). A small shell waits on a pipe whose only writer is this process; the kernel closes
/// it when we die, and the shell then stops the server named in the PID file and deletes the
/// directory. A normal dispose does both itself and then <see cref="Disarm"/>s the watchdog.
/// </summary>
internal sealed class Watchdog : IDisposable
{
    // INT and HUP are ignored so that a Ctrl-C on `dotnet test` does not take the watchdog down
    // before the test host (whose death it waits for).
    private const string Script = """
        trap '' INT HUP
        while read -r _; do :; done
        pid=$(cat "$1" 2>/dev/null)
        if [ -n "$pid" ] && kill -"$2" "$pid" 2>/dev/null; then
          n=0
          while kill -0 "$pid" 2>/dev/null && [ "$n" -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
          kill -KILL "$pid" 2>/dev/null
        fi
        rm -rf "$3"
        """;

    private readonly Process _shell;

    private Watchdog(Process shell) => _shell = shell;

    /// <param name="directory">Deleted when the test process dies.</param>
    /// <param name="pidFile">Holds the PID of the running server, if any.</param>
    /// <param name="signal">Sent to that PID first; SIGKILL follows after 10 s.</param>
    public static Watchdog Start(string directory, string pidFile, Signal signal)
    {
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, RedirectStandardInput = true, WorkingDirectory = "/" };
        foreach (var arg in (string[])["-c", Script, "vault-server-watchdog", pidFile, signal.ToString().ToUpperInvariant(), directory])
        {
            info.ArgumentList.Add(arg);
        }
        return new Watchdog(Process.Start(info) ?? throw new InvalidOperationException("could not start the watchdog shell"));
    }

    /// <summary>Ends the watchdog without letting it act: the owner has cleaned up itself.</summary>
    public void Disarm()
    {
        if (!_shell.HasExited)
        {
            _shell.Kill();
            _shell.WaitForExit();
        }
        _shell.Dispose();
    }

    /// <summary>What the kernel does when the test process dies: closes the pipe, so the watchdog acts.</summary>
    internal void Trigger() => _shell.StandardInput.Close();

    /// <summary>Waits for the watchdog to finish acting (after <see cref="Trigger"/>).</summary>
    internal Task WaitForExitAsync(CancellationToken ct) => _shell.WaitForExitAsync(ct);

    public void Dispose() => Disarm();
}
