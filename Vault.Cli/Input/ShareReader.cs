namespace Vault.Cli.Input;

/// <summary>
/// Gets an operator's key share as the passphrase is got: from a file, from redirected standard
/// input, or from a prompt without echo — never from a command-line value.
/// </summary>
internal static class ShareReader
{
    /// <exception cref="UsageException">No share could be read.</exception>
    public static string Read(CliConsole console, string? file)
    {
        var share = file is not null
            ? ArgumentParsers.ReadFile(file, "the key share").Trim()
            : console.IsInputRedirected
                ? console.In.ReadLine()?.Trim()
                : PassphraseReader.Prompt(console, "Unseal share: ").Trim();
        return string.IsNullOrEmpty(share)
            ? throw new UsageException("no key share given (type it at the prompt, pipe it on standard input, or use --share-file)")
            : share;
    }
}
