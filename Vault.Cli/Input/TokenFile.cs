namespace Vault.Cli.Input;

/// <summary>
/// Where <c>vaultctl login</c> keeps the token, as HashiCorp's <c>vault</c> CLI does:
/// <c>~/.vault-token</c>, readable and writable by its owner only. Commands use it when neither
/// <c>--token</c> nor <c>VAULT_TOKEN</c> gives a token.
/// </summary>
internal static class TokenFile
{
    public const string FileName = ".vault-token";

    /// <summary>The file's path: under <c>HOME</c> of <paramref name="console"/>'s environment, or null when it has none.</summary>
    public static string? PathFor(CliConsole console) =>
        console.GetEnvironmentVariable("HOME") is { Length: > 0 } home ? System.IO.Path.Combine(home, FileName) : null;

    /// <summary>The stored token, or null when there is no file.</summary>
    public static string? Read(CliConsole console)
    {
        var path = PathFor(console);
        if (path is null || !File.Exists(path))
        {
            return null;
        }
        var token = File.ReadAllText(path).Trim();
        return token.Length == 0 ? null : token;
    }

    /// <summary>Stores <paramref name="token"/>, replacing the file whole, with mode 0600 from the moment it exists.</summary>
    /// <exception cref="UsageException">There is no HOME, or the file cannot be written.</exception>
    public static string Write(CliConsole console, string token)
    {
        var path = PathFor(console) ?? throw new UsageException("cannot store the token: HOME is not set (use --no-store and pass the token with VAULT_TOKEN)");
        var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }
            using (var stream = new FileStream(temporary, options))
            using (var writer = new StreamWriter(stream))
            {
                writer.Write(token);
            }
            File.Move(temporary, path, overwrite: true);
            return path;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            File.Delete(temporary);
            throw new UsageException($"cannot store the token in {path}: {ex.Message}");
        }
    }
}
