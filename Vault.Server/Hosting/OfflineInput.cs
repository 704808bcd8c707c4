using System.Text;

namespace Vault.Server.Hosting;

/// <summary>
/// Secrets for the server binary's offline commands (<c>audit verify</c>, <c>backup verify</c>,
/// <c>restore</c>): from a file, from redirected standard input, or from a prompt without echo;
/// never from an argument, which other users can read in the process list.
/// </summary>
internal static class OfflineInput
{
    /// <summary>From the file, from redirected standard input (its first line), or from a prompt without echo.</summary>
    public static string ReadPassphrase(string? file)
    {
        string? passphrase;
        if (file is not null)
        {
            try
            {
                passphrase = File.ReadAllText(file);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new OfflineVerifyException($"cannot read the passphrase from {file}: {ex.Message}");
            }
            passphrase = passphrase.EndsWith("\r\n", StringComparison.Ordinal) ? passphrase[..^2] : passphrase.EndsWith('\n') ? passphrase[..^1] : passphrase;
        }
        else if (Console.IsInputRedirected)
        {
            passphrase = Console.In.ReadLine();
        }
        else
        {
            passphrase = Prompt("Passphrase: ");
        }
        return string.IsNullOrEmpty(passphrase)
            ? throw new OfflineVerifyException("no passphrase given (type it at the prompt, pipe it on standard input, or use --passphrase-file)")
            : passphrase;
    }

    public static string Prompt(string label)
    {
        Console.Error.Write(label);
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
                buffer.Length = Math.Max(0, buffer.Length - 1);
            }
            else if (!char.IsControl(key.KeyChar))
            {
                buffer.Append(key.KeyChar);
            }
        }
        Console.Error.WriteLine();
        return buffer.ToString();
    }

    /// <summary>
    /// Key shares: one per file given; else one per line of redirected standard input; else
    /// prompted for, one at a time, until <paramref name="threshold"/> were given.
    /// </summary>
    public static List<byte[]> ReadShares(IReadOnlyList<string> files, int threshold)
    {
        var texts = new List<string>();
        if (files.Count > 0)
        {
            foreach (var file in files)
            {
                try
                {
                    texts.Add(File.ReadAllText(file).Trim());
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    throw new OfflineVerifyException($"cannot read a share from {file}: {ex.Message}");
                }
            }
        }
        else if (Console.IsInputRedirected)
        {
            while (Console.In.ReadLine() is { } line)
            {
                if (line.Trim().Length > 0)
                {
                    texts.Add(line.Trim());
                }
            }
        }
        else
        {
            for (var i = 1; i <= threshold; i++)
            {
                texts.Add(Prompt($"Key share {i} of {threshold}: ").Trim());
            }
        }
        var shares = new List<byte[]>();
        foreach (var text in texts)
        {
            try
            {
                shares.Add(Convert.FromBase64String(text));
            }
            catch (FormatException)
            {
                throw new OfflineVerifyException($"share {shares.Count + 1} is not base64 (a share is the line `operator init` printed)");
            }
        }
        return shares.Count < threshold
            ? throw new OfflineVerifyException($"{shares.Count} key shares given; this vault needs {threshold}")
            : shares;
    }
}

/// <summary>An offline command could not run; the message says why, in one line.</summary>
internal sealed class OfflineVerifyException(string message) : Exception(message);
