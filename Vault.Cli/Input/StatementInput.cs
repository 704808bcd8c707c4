namespace Vault.Cli.Input;

/// <summary>
/// The creation statements of <c>role write</c>: <c>--statement</c> values, then those of
/// <c>--statement-file</c>. Only emptiness is checked here; whether a statement is valid SQL is
/// the database's to judge when a credential is issued, and what the server accepts is its own.
/// </summary>
internal static class StatementInput
{
    /// <summary>The statements in the order they run: the <c>--statement</c> values as given, then the file's.</summary>
    /// <param name="statements">The <c>--statement</c> values.</param>
    /// <param name="file">The <c>--statement-file</c> path, or null.</param>
    /// <exception cref="UsageException">An empty statement, an unreadable file, or a file that holds none.</exception>
    public static List<string> Read(IReadOnlyList<string> statements, string? file)
    {
        var result = new List<string>(statements.Count);
        for (var i = 0; i < statements.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(statements[i]))
            {
                throw new UsageException(statements.Count == 1 ? "--statement: the statement is empty" : $"--statement {i + 1} of {statements.Count}: the statement is empty");
            }
            result.Add(statements[i].Trim());
        }
        if (file is not null)
        {
            var fromFile = Split(ArgumentParsers.ReadFile(file, "statements"));
            if (fromFile.Count == 0)
            {
                throw new UsageException($"--statement-file: '{file}' holds no statement");
            }
            result.AddRange(fromFile);
        }
        return result;
    }

    /// <summary>
    /// Splits a file into statements: each ends with a <c>;</c> at the end of a line (the last may
    /// leave it out), so a statement may span lines. A <c>;</c> inside a line is left alone — it may
    /// be in a string literal; the <c>;</c> that ends a statement is dropped.
    /// </summary>
    public static List<string> Split(string text)
    {
        var result = new List<string>();
        var current = new List<string>();
        foreach (var line in text.ReplaceLineEndings("\n").Split('\n'))
        {
            var trimmed = line.TrimEnd();
            if (trimmed.EndsWith(';'))
            {
                current.Add(trimmed[..^1]);
                Flush();
            }
            else
            {
                current.Add(line);
            }
        }
        Flush();
        return result;

        void Flush()
        {
            var statement = string.Join('\n', current).Trim();
            if (statement.Length > 0)
            {
                result.Add(statement);
            }
            current.Clear();
        }
    }
}
