using System.Text;

namespace Vault.Cli.Input;

/// <summary>
/// Gets the operator's passphrase from a file, from redirected standard input, or from an
/// interactive prompt without echo — never from a command-line value, which other users of the
/// machine can read from the process list and which shells keep in their history.
/// </summary>
internal static class PassphraseReader
{
    /// <param name="console">Where to read it from when there is no file.</param>
    /// <param name="file">--passphrase-file, or null.</param>
    /// <param name="confirm">Prompt twice (interactive init).</param>
    /// <exception cref="UsageException">No passphrase could be read, or the two entries differ.</exception>
    public static string Read(CliConsole console, string? file, bool confirm)
    {
        string? passphrase;
        if (file is not null)
        {
            passphrase = TrimNewline(ArgumentParsers.ReadFile(file, "the passphrase"));
        }
        else if (console.IsInputRedirected)
        {
            passphrase = console.In.ReadLine();
        }
        else
        {
            passphrase = Prompt(console, "Passphrase: ");
            if (confirm && passphrase.Length > 0 && Prompt(console, "Repeat passphrase: ") != passphrase)
            {
                throw new UsageException("the passphrases do not match");
            }
        }
        return string.IsNullOrEmpty(passphrase)
            ? throw new UsageException("no passphrase given (type it at the prompt, pipe it on standard input, or use --passphrase-file)")
            : passphrase;
    }

    /// <summary>A new passphrase at the prompt, typed twice.</summary>
    /// <exception cref="UsageException">Empty, or the two entries differ.</exception>
    public static string ReadNew(CliConsole console)
    {
        var passphrase = Prompt(console, "New passphrase: ");
        if (passphrase.Length == 0)
        {
            throw new UsageException("no new passphrase given");
        }
        if (Prompt(console, "Repeat new passphrase: ") != passphrase)
        {
            throw new UsageException("the new passphrases do not match");
        }
        return passphrase;
    }

    /// <summary>Drops one trailing newline (<c>\n</c> or <c>\r\n</c>), which files and <c>echo</c> add.</summary>
    internal static string TrimNewline(string text) =>
        text.EndsWith("\r\n", StringComparison.Ordinal) ? text[..^2] : text.EndsWith('\n') ? text[..^1] : text;

    /// <summary>Reads one line from the terminal without echoing it (only when standard input is the terminal).</summary>
    internal static string Prompt(CliConsole console, string label)
    {
        console.Error.Write(label);
        var buffer = new StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter)
            {
                break;
            }
            if (key.Key == ConsoleKey.Backspace)
            {
                if (buffer.Length > 0)
                {
                    buffer.Length--;
                }
            }
            else if (!char.IsControl(key.KeyChar))
            {
                buffer.Append(key.KeyChar);
            }
        }
        console.Error.WriteLine();
        return buffer.ToString();
    }
}
