namespace Vault.Cli;

/// <summary>
/// What one vaultctl run reads and writes: standard input, output and error, and the environment.
/// The process passes its own (<see cref="Process"/>); the tests pass strings and a dictionary, so
/// hundreds of runs need not each start a process, and no run sees another's environment.
/// </summary>
/// <param name="In">Standard input.</param>
/// <param name="Out">Standard output: results only.</param>
/// <param name="Error">Standard error: messages for the person at the terminal.</param>
/// <param name="IsInputRedirected">False when standard input is a terminal, where secrets are prompted for without echo.</param>
/// <param name="GetEnvironmentVariable">Reads one environment variable (null when unset).</param>
internal sealed record CliConsole(
    TextReader In,
    TextWriter Out,
    TextWriter Error,
    bool IsInputRedirected,
    Func<string, string?> GetEnvironmentVariable)
{
    /// <summary>The process's own streams and environment.</summary>
    public static CliConsole Process() =>
        new(Console.In, Console.Out, Console.Error, Console.IsInputRedirected, Environment.GetEnvironmentVariable);
}
