using System.Diagnostics;

namespace Vault.Testing;

/// <summary>What a process that ran to its end left behind.</summary>
public sealed record ExitedProcess(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>
    /// Runs a command with <paramref name="stdin"/> as its standard input and its output captured,
    /// until it exits; killed (with its children) and reported with its output after <paramref name="timeout"/>.
    /// </summary>
    /// <param name="file">The program.</param>
    /// <param name="args">Its arguments, each passed as one word.</param>
    /// <param name="environment">Variables to set (null: unset) on top of this process's environment.</param>
    /// <exception cref="TimeoutException">It did not exit in time.</exception>
    public static async Task<ExitedProcess> RunAsync(string file, IEnumerable<string> args, IEnumerable<KeyValuePair<string, string?>> environment, string stdin, TimeSpan timeout)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        using var expiry = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(expiry.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', info.ArgumentList)} did not exit within {timeout.TotalSeconds:0} s; output:\n{await stdout}\n{await stderr}");
        }
        return new ExitedProcess(process.ExitCode, await stdout, await stderr);
    }
}
