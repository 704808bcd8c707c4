using System.CommandLine;
using System.Diagnostics;
using Vault.Cli.Output;
using Vault.Client;

namespace Vault.Cli.Commands;

/// <summary>
/// <c>vaultctl operator backup FILE</c> (online, from the server), <c>operator backup verify FILE</c>
/// and <c>operator restore FILE --data-dir DIR</c> (offline: they run the server binary's
/// <c>backup verify</c> and <c>restore</c>, which hold the keyring code vaultctl never has).
/// </summary>
internal static class BackupCommands
{
    /// <summary>Where vaultctl looks for the server binary when no --server-binary is given.</summary>
    public const string ServerBinaryVariable = "VAULT_SERVER_BINARY";

    private const string SecretHelp =
        "The passphrase (--passphrase-file) or key shares (--share-file, once per share) are read from files, from standard input when it is redirected "
        + "(a share per line), or from prompts without echo; never from arguments.";

    public static Command Backup()
    {
        var file = new Argument<string>("FILE") { Description = "Where to write the backup (refused if it exists)" };
        var command = new Command("backup",
            "Take an online backup: every record at one commit index (writes go on meanwhile), the audit trail up to it, and a MAC keyed from the keyring. "
            + "It is written to FILE.partial, flushed to disk, then renamed to FILE. It holds ciphertext and non-secret metadata only. Needs read on sys/backup")
        {
            file,
        };
        command.Subcommands.Add(Verify());
        command.SetHandler(async (ctx, ct) =>
        {
            var path = ctx.Value(file);
            if (File.Exists(path))
            {
                throw new UsageException($"{path} exists: choose a new file (a backup is never written over another)");
            }
            var partial = path + ".partial";
            BackupInfo info;
            try
            {
                await using (var output = new FileStream(partial, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                {
                    info = await ctx.Client.BackupAsync(output, ct);
                    output.Flush(flushToDisk: true);
                }
                File.Move(partial, path);
            }
            catch (IOException ex) when (ex is not EndOfStreamException)
            {
                TryDelete(partial);
                throw new UsageException($"cannot write {path}: {ex.Message}");
            }
            catch
            {
                TryDelete(partial);
                throw;
            }
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { File = path, info.Index, CreatedAt = info.CreatedAt.ToString("o"), info.Records, info.Bytes });
                return;
            }
            ctx.Out.Fields(("File", path), ("Index", info.Index.ToString()), ("Taken At", info.CreatedAt.ToString("u")),
                ("Records", info.Records.ToString()), ("Bytes", info.Bytes.ToString()));
            await ctx.Console.Error.WriteLineAsync("Check it with `vaultctl operator backup verify` (offline, with the passphrase or shares) before you rely on it.");
        });
        return command;
    }

    private static Command Verify()
    {
        var file = new Argument<string>("FILE") { Description = "The backup file" };
        var (passphrase, shares, server) = SecretOptions();
        var command = new Command("verify",
            "Check a backup offline, with no server: its MAC over every byte, the counts in its header, every record's seal and encrypted value, and its audit trail. "
            + SecretHelp + " Exits 4 when the backup is damaged or altered")
        {
            file, passphrase, shares, server,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            var args = new List<string> { "backup", "verify", ctx.Value(file) };
            var stdin = AddSecrets(ctx, args, ctx.Value(file), passphrase, shares);
            if (ctx.Out.IsJson)
            {
                args.Add("--json");
            }
            await RunServerAsync(ctx, ctx.Value(server), args, stdin, ct);
        });
        return command;
    }

    public static Command Restore()
    {
        var file = new Argument<string>("FILE") { Description = "The backup file" };
        var dataDir = new Option<string>("--data-dir") { Description = "The new data directory to restore into (created; refused unless empty)", Required = true };
        var (passphrase, shares, server) = SecretOptions();
        var command = new Command("restore",
            "Restore a backup into a new, empty data directory, offline (the server stopped): everything `backup verify` checks is checked first, "
            + "and nothing is written unless it all passes. Start the server on that directory and unseal it with the backup's passphrase or shares. "
            + SecretHelp)
        {
            file, dataDir, passphrase, shares, server,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            var args = new List<string> { "restore", ctx.Value(file), "--data-dir", ctx.Value(dataDir) };
            var stdin = AddSecrets(ctx, args, ctx.Value(file), passphrase, shares);
            await RunServerAsync(ctx, ctx.Value(server), args, stdin, ct);
        });
        return command;
    }

    public static Command Migrate()
    {
        var from = new Option<string>("--from") { Description = "The source: a stopped vault's data directory, or postgres", Required = true };
        var to = new Option<string>("--to") { Description = "The destination: postgres, or a new, empty data directory", Required = true };
        var connectionFile = new Option<string>("--connection-file") { Description = $"Read the PostgreSQL connection string from this file (else ${ConnectionVariable}; never an argument)" };
        var (passphrase, shares, server) = SecretOptions();
        var command = new Command("migrate",
            "Move a vault between a LiteDB data directory and a PostgreSQL database, offline (every node stopped): every record byte for byte, "
            + "every record checked first with the passphrase or shares (seals verified, values decrypted), then read back from the far side, which must hold exactly those bytes. "
            + "A destination that holds a vault is refused. The audit trail stays in the source's files (the migrated vault's chain begins after it). "
            + "The passphrase or shares come from files or standard input")
        {
            from, to, connectionFile, passphrase, shares, server,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            var args = new List<string> { "migrate", "--from", Side(ctx.Value(from)), "--to", Side(ctx.Value(to)) };
            if (ctx.Value(connectionFile) is { } file)
            {
                args.Add("--connection-file");
                args.Add(Path.GetFullPath(file));
            }
            var given = ctx.Value(passphrase) is not null || (ctx.Value(shares) ?? []).Length > 0;
            if (!given && !ctx.Console.IsInputRedirected)
            {
                throw new UsageException("give --passphrase-file or --share-file (or the secret on standard input, a share per line)");
            }
            var stdin = AddSecrets(ctx, args, backup: "", passphrase, shares);
            var environment = ctx.Console.GetEnvironmentVariable(ConnectionVariable) is { } connection ? new Dictionary<string, string> { [ConnectionVariable] = connection } : null;
            await RunServerAsync(ctx, ctx.Value(server), args, stdin, ct, environment);
        });
        return command;
    }

    /// <summary>Where the server binary reads the connection string from when no --connection-file is given.</summary>
    public const string ConnectionVariable = "VAULT_POSTGRES_CONNECTION";

    private static string Side(string side) => side == "postgres" ? side : Path.GetFullPath(side);

    private static (Option<string> Passphrase, Option<string[]> Shares, Option<string> Server) SecretOptions() =>
        (new Option<string>("--passphrase-file") { Description = "Read the passphrase from this file (one trailing newline is ignored)" },
         new Option<string[]>("--share-file") { Description = "Read a key share from this file (repeat for each share)", AllowMultipleArgumentsPerToken = false },
         new Option<string>("--server-binary") { Description = $"The server binary (Vault.Server) to run; else ${ServerBinaryVariable}, else Vault.Server beside vaultctl" });

    /// <summary>
    /// Adds the secret files to <paramref name="args"/>; without any, the secret goes to the server
    /// binary on its standard input: vaultctl's own (redirected), or what vaultctl prompts for here —
    /// the passphrase, or as many shares as the backup's header says the vault needs.
    /// </summary>
    /// <returns>What to write to the server binary's standard input.</returns>
    private static string AddSecrets(CommandContext ctx, List<string> args, string backup, Option<string> passphrase, Option<string[]> shares)
    {
        if (ctx.Value(passphrase) is { } path)
        {
            args.Add("--passphrase-file");
            args.Add(Path.GetFullPath(path));
        }
        foreach (var share in ctx.Value(shares) ?? [])
        {
            args.Add("--share-file");
            args.Add(Path.GetFullPath(share));
        }
        if (args.Contains("--passphrase-file") || args.Contains("--share-file"))
        {
            return "";
        }
        if (ctx.Console.IsInputRedirected)
        {
            return ctx.Console.In.ReadToEnd();
        }
        var threshold = Input.BackupHeaderReader.Threshold(backup);
        if (threshold == 0)
        {
            return Input.PassphraseReader.Prompt(ctx.Console, "Passphrase: ") + "\n";
        }
        return string.Concat(Enumerable.Range(1, threshold).Select(i => Input.PassphraseReader.Prompt(ctx.Console, $"Key share {i} of {threshold}: ").Trim() + "\n"));
    }

    /// <summary>
    /// Runs the server binary with <paramref name="args"/> and passes its output on. Its failure
    /// becomes vaultctl's: a damaged backup (its exit code 4) exits 4, anything else 1, each with
    /// the server binary's one-line message.
    /// </summary>
    private static async Task RunServerAsync(CommandContext ctx, string? given, List<string> args, string stdin, CancellationToken cancellationToken,
        Dictionary<string, string>? environment = null)
    {
        var binary = given ?? ctx.Console.GetEnvironmentVariable(ServerBinaryVariable) ?? Path.Combine(AppContext.BaseDirectory, "Vault.Server");
        if (!File.Exists(binary))
        {
            throw new UsageException($"the server binary was not found at {binary}: this command runs it offline (it holds the keyring code); "
                + $"give --server-binary or set {ServerBinaryVariable}");
        }
        var start = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        foreach (var (name, value) in environment ?? [])
        {
            start.Environment[name] = value;
        }
        using var process = Process.Start(start) ?? throw new UsageException($"cannot start {binary}");
        // Cancelled (Ctrl-C): the server binary stops too (a restore then leaves the data directory untouched).
        await using var kill = cancellationToken.Register(() =>
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Already exited.
            }
        });
        var output = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var error = process.StandardError.ReadToEndAsync(CancellationToken.None);
        await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        await process.WaitForExitAsync(CancellationToken.None);
        cancellationToken.ThrowIfCancellationRequested();
        await ctx.Console.Out.WriteAsync(await output);
        var message = (await error).Trim();
        const string Prefix = "vault: ";
        message = message.StartsWith(Prefix, StringComparison.Ordinal) ? message[Prefix.Length..] : message;
        switch (process.ExitCode)
        {
            case 0:
                return;
            case ExitCodes.VerificationFailed:
                throw new VerificationFailedException(message);
            default:
                throw new UsageException(message.Length > 0 ? message : $"{binary} exited with code {process.ExitCode}");
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: a partial file is named as one.
        }
    }
}
