namespace Vault.Cli.Input;

/// <summary>
/// Gets a secret value (one to hash, say) from a file, from redirected standard input, or from a
/// prompt without echo — never from a command-line value, for the same reasons as the passphrase
/// (see <see cref="PassphraseReader"/>).
/// </summary>
internal static class SecretValueReader
{
    /// <param name="console">Where to read it from when there is no file.</param>
    /// <param name="file">The --value-file option, or null.</param>
    /// <param name="optionName">The option's name, for messages.</param>
    /// <param name="cancellationToken">Cancels reading standard input.</param>
    /// <returns>The value; one trailing newline is dropped (files and <c>echo</c> add one), anything else is kept.</returns>
    /// <exception cref="UsageException">No value could be read, or it is empty.</exception>
    public static Task<string> ReadAsync(CliConsole console, string? file, string optionName, CancellationToken cancellationToken) =>
        ReadAsync(console, file, optionName, "value", cancellationToken);

    /// <inheritdoc cref="ReadAsync(CliConsole, string?, string, CancellationToken)"/>
    /// <param name="what">What the value is, lower-case, for the prompt and messages (e.g. <c>current password</c>).</param>
    public static async Task<string> ReadAsync(CliConsole console, string? file, string optionName, string what, CancellationToken cancellationToken)
    {
        string value;
        if (file is not null)
        {
            value = PassphraseReader.TrimNewline(ArgumentParsers.ReadFile(file, $"the {what}"));
        }
        else if (console.IsInputRedirected)
        {
            // All of standard input, so a multi-line value (a PEM key) hashes as a whole.
            value = PassphraseReader.TrimNewline(await console.In.ReadToEndAsync(cancellationToken));
        }
        else
        {
            value = PassphraseReader.Prompt(console, $"{char.ToUpperInvariant(what[0])}{what[1..]}: ");
        }
        return value.Length == 0
            ? throw new UsageException($"no {what} given (pipe it on standard input, type it at the prompt, or use {optionName})")
            : value;
    }
}
