using System.Diagnostics;
using System.Text;
using System.Threading.Channels;

namespace Vault.Tests.Cli;

/// <summary>A vaultctl process still running (e.g. <c>audit tail --follow</c>): its stdout as lines, and a way to stop it like Ctrl+C does.</summary>
public sealed class RunningVaultCtl : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
    private readonly List<string> _allLines = [];
    private readonly Task _stdout;
    private readonly Task<string> _stderr;

    internal RunningVaultCtl(Process process)
    {
        _process = process;
        _stdout = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                _lines.Writer.TryWrite(line);
            }
            _lines.Writer.TryComplete();
        });
        _stderr = process.StandardError.ReadToEndAsync();
    }

    /// <summary>Every stdout line read so far.</summary>
    public IReadOnlyList<string> Lines => _allLines;

    /// <summary>Waits for the next stdout line that matches; fails the test with what was printed if none comes in time.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var line = await _lines.Reader.ReadAsync(cts.Token);
                _allLines.Add(line);
                if (match(line))
                {
                    return line;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ChannelClosedException)
        {
            var why = ex is ChannelClosedException ? "vaultctl exited" : $"nothing matched in {timeout.TotalSeconds} s";
            throw new Xunit.Sdk.XunitException($"{why}; stdout so far:\n{string.Join('\n', _allLines)}");
        }
    }

    /// <summary>Sends SIGINT (what Ctrl+C sends) and waits for the process to exit; kills it if it does not within <paramref name="timeout"/>.</summary>
    /// <returns>The exit code and the rest of the output.</returns>
    public async Task<CliResult> InterruptAsync(TimeSpan timeout)
    {
        using (var kill = Process.Start("kill", ["-INT", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
            Assert.Equal(0, kill.ExitCode);
        }
        return await ExitAsync(timeout, "of SIGINT");
    }

    /// <summary>Waits for vaultctl to exit by itself (e.g. the server ended its stream); kills it if it does not within <paramref name="timeout"/>.</summary>
    /// <returns>The exit code and the rest of the output.</returns>
    public Task<CliResult> WaitForExitAsync(TimeSpan timeout) => ExitAsync(timeout, "");

    private async Task<CliResult> ExitAsync(TimeSpan timeout, string after)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            throw new Xunit.Sdk.XunitException($"vaultctl did not exit within {timeout.TotalSeconds} s {after}".TrimEnd());
        }
        await _stdout;
        while (_lines.Reader.TryRead(out var line))
        {
            _allLines.Add(line);
        }
        var stdout = new StringBuilder();
        foreach (var line in _allLines)
        {
            stdout.Append(line).Append('\n');
        }
        return new CliResult(_process.ExitCode, stdout.ToString(), await _stderr);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
