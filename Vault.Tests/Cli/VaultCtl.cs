using System.Diagnostics;
using System.Text.Json;
using Vault.Cli;

namespace Vault.Tests.Cli;

/// <summary>What one vaultctl run showed the user.</summary>
public sealed record CliResult(int ExitCode, string StdOut, string StdErr)
{
    /// <summary>Standard output parsed as JSON (for --json runs); fails the test with the output if it is not JSON.</summary>
    public JsonElement Json()
    {
        Assert.True(ExitCode == 0, $"vaultctl exited {ExitCode}: {StdErr}");
        try
        {
            using var document = JsonDocument.Parse(StdOut);
            return document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new Xunit.Sdk.XunitException($"stdout is not JSON ({ex.Message}): {StdOut}");
        }
    }

    /// <summary>Asserts the run succeeded and returns standard output.</summary>
    public string Ok()
    {
        Assert.True(ExitCode == 0, $"vaultctl exited {ExitCode}: {StdErr}");
        return StdOut;
    }

    /// <summary>Asserts a failure: the exit code, nothing on stdout, and exactly one 'vaultctl: ...' line on stderr (no stack trace).</summary>
    public string OneLineError(int exitCode, string contains)
    {
        Assert.True(ExitCode == exitCode, $"expected exit {exitCode}, got {ExitCode}; stderr: {StdErr}; stdout: {StdOut}");
        Assert.Equal("", StdOut);
        var line = StdErr.TrimEnd('\n', '\r');
        Assert.DoesNotContain('\n', line);
        Assert.StartsWith("vaultctl: ", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", StdErr, StringComparison.Ordinal);
        Assert.Contains(contains, line, StringComparison.Ordinal);
        return line;
    }
}

/// <summary>
/// Runs vaultctl with a controlled environment: VAULT_ADDR / VAULT_TOKEN / VAULT_CACERT /
/// VAULT_CLIENT_TIMEOUT and HOME (where 'vaultctl login' keeps its token) come only from <see cref="Environment"/>. A run is vaultctl's own entry
/// point (<see cref="CliApp"/>) inside the test process, with strings for its standard streams
/// — the same parsing, client and error mapping as the binary, without starting a .NET process
/// for each of the suite's hundreds of runs. <see cref="AsProcess"/> and <see cref="Start"/> run
/// the built vaultctl.dll as a child process instead: for what only a process shows (its signals,
/// its exit code as the shell sees it, that the binary starts at all).
/// </summary>
public sealed class VaultCtl(string address, string? token = null)
{
    private static readonly string Dll = FindVaultCtl();
    private static readonly string DotNet = System.Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    public Dictionary<string, string?> Environment { get; } = new(StringComparer.Ordinal)
    {
        ["VAULT_ADDR"] = address,
        ["VAULT_TOKEN"] = token,
        ["VAULT_CACERT"] = null,
        ["VAULT_CLIENT_TIMEOUT"] = null,
        // No home: no token stored by 'vaultctl login' (the tester's, or another test's) is used.
        ["HOME"] = null,
    };

    /// <summary>Runs the built vaultctl.dll as a child process instead of in the test process.</summary>
    public bool AsProcess { get; init; }

    public Task<CliResult> RunAsync(params string[] args) => RunWithInputAsync("", args);

    /// <summary>Starts vaultctl and returns while it runs (for --follow), its output read line by line.</summary>
    public RunningVaultCtl Start(params string[] args)
    {
        var process = Process.Start(StartInfo(args)) ?? throw new InvalidOperationException("cannot start vaultctl");
        process.StandardInput.Close();
        return new RunningVaultCtl(process);
    }

    /// <summary>Runs vaultctl with <paramref name="stdin"/> as its (redirected) standard input.</summary>
    public Task<CliResult> RunWithInputAsync(string stdin, params string[] args) =>
        AsProcess ? RunProcessAsync(stdin, args) : RunInProcessAsync(stdin, args);

    private async Task<CliResult> RunInProcessAsync(string stdin, string[] args)
    {
        var environment = new Dictionary<string, string?>(Environment, StringComparer.Ordinal);
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var console = new CliConsole(new StringReader(stdin), stdout, stderr, IsInputRedirected: true, name => environment.GetValueOrDefault(name));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var exitCode = await CliApp.RunAsync(args, console, processTerminationTimeout: null, timeout.Token);
        if (timeout.IsCancellationRequested)
        {
            throw new TimeoutException($"vaultctl {string.Join(' ', args)} did not finish in 60 s");
        }
        return new CliResult(exitCode, stdout.ToString(), stderr.ToString());
    }

    private async Task<CliResult> RunProcessAsync(string stdin, string[] args)
    {
        var run = await ExitedProcess.RunAsync(DotNet, [Dll, .. args], Environment, stdin, TimeSpan.FromSeconds(60));
        return new CliResult(run.ExitCode, run.Stdout, run.Stderr);
    }

    private ProcessStartInfo StartInfo(string[] args)
    {
        var start = new ProcessStartInfo(DotNet)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Dll);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        foreach (var (name, value) in Environment)
        {
            start.Environment[name] = value;
        }
        return start;
    }

    /// <summary>
    /// The vaultctl.dll in Vault.Cli's own build output. The copy beside the tests cannot run on its
    /// own: the test project gets Microsoft.Extensions.Logging.Abstractions (needed by
    /// Grpc.Net.Client) from the ASP.NET Core shared framework, so the package's dll is not copied
    /// there, while vaultctl.runtimeconfig.json names only Microsoft.NETCore.App. Vault.Cli's own
    /// output is the layout users run.
    /// </summary>
    private static string FindVaultCtl()
    {
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var framework = testBin.Name;
        var configuration = testBin.Parent?.Name ?? "Debug";
        for (var dir = testBin; dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "Vault.Cli", "bin", configuration, framework, "vaultctl.dll");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new FileNotFoundException($"vaultctl.dll not found under Vault.Cli/bin/{configuration}/{framework}: build Vault.Cli first (dotnet build Vault.sln)");
    }
}
