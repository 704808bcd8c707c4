using System.CommandLine;
using Vault.Cli.Input;
using Vault.Cli.Output;
using Vault.Protocol.V1;

namespace Vault.Cli.Commands;

/// <summary><c>vaultctl operator init|unseal|generate-root|rekey|seal|status|rotate-key|backup|restore</c>.</summary>
internal static class OperatorCommands
{
    private const string PassphraseHelp =
        "The passphrase is read from --passphrase-file, from standard input when it is redirected, or from a prompt without echo; never from an argument.";

    public static Command Build()
    {
        var command = new Command("operator", "Initialise, unseal, seal and inspect the vault; rotate its key; back it up and restore it");
        command.Subcommands.Add(Init());
        command.Subcommands.Add(Unseal());
        command.Subcommands.Add(GenerateRoot());
        command.Subcommands.Add(Rekey());
        command.Subcommands.Add(Seal());
        command.Subcommands.Add(Status());
        command.Subcommands.Add(RotateKey());
        command.Subcommands.Add(BackupCommands.Backup());
        command.Subcommands.Add(BackupCommands.Restore());
        command.Subcommands.Add(BackupCommands.Migrate());
        return command;
    }

    private static Option<string> PassphraseFile() => new("--passphrase-file") { Description = "Read the passphrase from this file (one trailing newline is ignored)" };

    private static Command Init()
    {
        var file = PassphraseFile();
        var memory = new Option<uint?>("--kdf-memory-kib") { Description = "Argon2id memory in KiB (server default 65536)" };
        var iterations = new Option<uint?>("--kdf-iterations") { Description = "Argon2id iterations (server default 3)" };
        var parallelism = new Option<uint?>("--kdf-parallelism") { Description = "Argon2id lanes (server default 2)" };
        var shares = new Option<int?>("--shares") { Description = "Dual control: split a random unseal key into this many key shares (2-255) instead of using a passphrase" };
        var threshold = new Option<int?>("--threshold") { Description = "With --shares: how many shares unseal (2 to --shares)" };
        var command = new Command("init", $"Initialise a new vault and print its root token (shown once). {PassphraseHelp} With --shares, no passphrase: each key share is printed once.")
        {
            file, memory, iterations, parallelism, shares, threshold,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            if (ctx.Value(shares) is not null || ctx.Value(threshold) is not null)
            {
                if (ctx.Value(shares) is null || ctx.Value(threshold) is null)
                {
                    throw new UsageException("--shares and --threshold go together");
                }
                if (ctx.Value(file) is not null || ctx.Value(memory) is not null || ctx.Value(iterations) is not null || ctx.Value(parallelism) is not null)
                {
                    throw new UsageException("--shares: key shares replace the passphrase; --passphrase-file and --kdf-* do not apply");
                }
                var split = await ctx.Client.InitWithSharesAsync(ctx.Value(shares)!.Value, ctx.Value(threshold)!.Value, ct);
                if (ctx.Out.IsJson)
                {
                    ctx.Out.Json(new { split.RootToken, split.RootTokenAccessor, Shares = split.Shares.ToList(), Threshold = ctx.Value(threshold) });
                    return;
                }
                ctx.Out.Fields([.. split.Shares.Select((s, i) => ($"Unseal Share {i + 1}", s)), ("Root Token", split.RootToken), ("Root Token Accessor", split.RootTokenAccessor)]);
                await ctx.Console.Error.WriteLineAsync(
                    $"The vault is initialised and unsealed. {split.Shares.Count} key shares were made; any {ctx.Value(threshold)} of them unseal it. Give each to a different operator: they and the root token are shown only this once.");
                return;
            }
            KdfParameters? kdf = null;
            if (ctx.Value(memory) is not null || ctx.Value(iterations) is not null || ctx.Value(parallelism) is not null)
            {
                kdf = new KdfParameters
                {
                    MemoryKib = ctx.Value(memory) ?? 65536,
                    Iterations = ctx.Value(iterations) ?? 3,
                    Parallelism = ctx.Value(parallelism) ?? 2,
                };
            }
            var client = ctx.Client;
            var passphrase = PassphraseReader.Read(ctx.Console, ctx.Value(file), confirm: true);
            var init = await client.InitAsync(passphrase, kdf, ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { init.RootToken, init.RootTokenAccessor });
                return;
            }
            ctx.Out.Fields(("Root Token", init.RootToken), ("Root Token Accessor", init.RootTokenAccessor));
            await ctx.Console.Error.WriteLineAsync("The vault is initialised and unsealed. The root token is shown only this once: store it safely.");
        });
        return command;
    }

    private static Command Unseal()
    {
        var file = PassphraseFile();
        var shareFile = new Option<string>("--share-file") { Description = "Key-share mode: read this operator's share from this file" };
        var reset = new Option<bool>("--reset") { Description = "Key-share mode: forget the shares given so far" };
        var command = new Command("unseal",
            $"Unseal the vault with the operator's passphrase, or give one key share towards the threshold (read like the passphrase, or from --share-file). {PassphraseHelp}")
        {
            file, shareFile, reset,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            var client = ctx.Client;
            if (ctx.Value(reset))
            {
                PrintStatus(ctx.Out, await client.ResetUnsealAsync(ct));
                return;
            }
            var status = await client.GetStatusAsync(ct);
            if (status.SecretThreshold > 0)
            {
                var share = ShareReader.Read(ctx.Console, ctx.Value(shareFile));
                PrintStatus(ctx.Out, await client.UnsealWithShareAsync(share, ct));
                return;
            }
            if (ctx.Value(shareFile) is not null)
            {
                throw new UsageException("--share-file: this vault unseals with a passphrase, not key shares");
            }
            var passphrase = PassphraseReader.Read(ctx.Console, ctx.Value(file), confirm: false);
            PrintStatus(ctx.Out, await client.UnsealAsync(passphrase, ct));
        });
        return command;
    }

    private static Command GenerateRoot()
    {
        var file = PassphraseFile();
        var shareFile = new Option<string>("--share-file") { Description = "Key-share mode: read this operator's share from this file" };
        var init = new Option<bool>("--init") { Description = "Key-share mode: start an attempt; prints the one-time pad to decode the token with (keep it)" };
        var decode = new Option<string>("--decode") { Description = "Decode an encoded token locally with --otp (no server call)" };
        var otp = new Option<string>("--otp") { Description = "With --decode: the one-time pad --init printed" };
        var reset = new Option<bool>("--reset") { Description = "Key-share mode: forget the attempt in progress" };
        var command = new Command("generate-root",
            "Make a new root token with the passphrase, or with a quorum of key shares (one operator starts with --init, each gives a share, the starter decodes the result). Needs no token")
        {
            file, shareFile, init, decode, otp, reset,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            if (ctx.Value(decode) is { } encoded)
            {
                var token = DecodeRoot(encoded, ctx.Value(otp) ?? throw new UsageException("--decode needs --otp"));
                ctx.Out.Field(token);
                return;
            }
            var client = ctx.Client;
            if (ctx.Value(reset))
            {
                await client.GenerateRootAsync(new GenerateRootRequest { Reset = true }, ct);
                ctx.Out.Line("generate-root attempt forgotten");
                return;
            }
            var status = await client.GetStatusAsync(ct);
            if (status.SecretThreshold == 0)
            {
                var passphrase = PassphraseReader.Read(ctx.Console, ctx.Value(file), confirm: false);
                var pad = System.Security.Cryptography.RandomNumberGenerator.GetBytes(RootPadLength);
                var made = await client.GenerateRootAsync(new GenerateRootRequest { Passphrase = passphrase, Otp = Convert.ToBase64String(pad) }, ct);
                PrintRoot(ctx, DecodeRoot(made.EncodedToken, Convert.ToBase64String(pad)), made.RootTokenAccessor);
                return;
            }
            if (ctx.Value(init))
            {
                var pad = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(RootPadLength));
                var started = await client.GenerateRootAsync(new GenerateRootRequest { Otp = pad }, ct);
                if (ctx.Out.IsJson)
                {
                    ctx.Out.Json(new { Otp = pad, started.Threshold });
                    return;
                }
                ctx.Out.Fields(("OTP", pad), ("Threshold", started.Threshold.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                await ctx.Console.Error.WriteLineAsync($"Attempt started: {started.Threshold} operators now each run 'vaultctl operator generate-root' with their share; decode the result with --decode ENCODED --otp (this OTP, shown once).");
                return;
            }
            var share = ShareReader.Read(ctx.Console, ctx.Value(shareFile));
            var step = await client.GenerateRootAsync(new GenerateRootRequest { Share = share }, ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { step.Progress, step.Threshold, EncodedToken = step.EncodedToken.Length > 0 ? step.EncodedToken : null, RootTokenAccessor = step.RootTokenAccessor.Length > 0 ? step.RootTokenAccessor : null });
                return;
            }
            ctx.Out.Fields(step.EncodedToken.Length > 0
                ? [("Encoded Token", step.EncodedToken), ("Root Token Accessor", step.RootTokenAccessor)]
                : [("Progress", $"{step.Progress}/{step.Threshold}")]);
        });
        return command;
    }

    private static void PrintRekeyStep(CommandContext ctx, RekeyResponse step)
    {
        if (ctx.Out.IsJson)
        {
            ctx.Out.Json(new
            {
                step.Progress,
                step.Threshold,
                NewShares = step.NewShares.Count > 0 ? step.NewShares.ToList() : null,
                step.VerificationPending,
                RekeyedAt = Printer.Time(step.RekeyedAt),
            });
            return;
        }
        if (step.NewShares.Count > 0)
        {
            ctx.Out.Fields([.. step.NewShares.Select((s, i) => ($"New Share {i + 1}", s))]);
            ctx.Console.Error.WriteLine($"New shares made and staged: the current ones still unseal. Give one to each holder; {step.Threshold} of them must run 'vaultctl operator rekey --verify' with theirs for them to take effect. Shown only this once.");
            return;
        }
        ctx.Out.Fields(step.RekeyedAt is not null
            ? [("Rekeyed At", Printer.Human(step.RekeyedAt))]
            : [("Progress", $"{step.Progress}/{step.Threshold}"), ("Verification Pending", step.VerificationPending ? "true" : "false")]);
    }

    /// <summary>A root token's length, and so the one-time pad's.</summary>
    private const int RootPadLength = 46;

    private static string DecodeRoot(string encoded, string pad)
    {
        byte[] bytes, key;
        try
        {
            bytes = Convert.FromBase64String(encoded.Trim());
            key = Convert.FromBase64String(pad.Trim());
        }
        catch (FormatException)
        {
            throw new UsageException("--decode and --otp must be base64");
        }
        if (bytes.Length != key.Length)
        {
            throw new UsageException("--decode and --otp are of different lengths: not this attempt's pad");
        }
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] ^= key[i];
        }
        return System.Text.Encoding.ASCII.GetString(bytes);
    }

    private static void PrintRoot(CommandContext ctx, string token, string accessor)
    {
        if (ctx.Out.IsJson)
        {
            ctx.Out.Json(new { RootToken = token, RootTokenAccessor = accessor });
            return;
        }
        ctx.Out.Fields(("Root Token", token), ("Root Token Accessor", accessor));
    }

    private static Command Rekey()
    {
        var file = PassphraseFile();
        var newFile = new Option<string>("--new-passphrase-file") { Description = "Read the new passphrase from this file (one trailing newline is ignored)" };
        var shares = new Option<int?>("--shares") { Description = "Key-share vault: start a re-split into this many shares (with --threshold)" };
        var threshold = new Option<int?>("--threshold") { Description = "With --shares: how many of the new shares unseal" };
        var shareFile = new Option<string>("--share-file") { Description = "Key-share vault: read this operator's share from this file (else a prompt or standard input)" };
        var verify = new Option<bool>("--verify") { Description = "Key-share vault: give back one of the NEW shares; at the threshold they take effect" };
        var reset = new Option<bool>("--reset") { Description = "Key-share vault: forget the re-split in progress" };
        var command = new Command("rekey",
            "Change the passphrase: the keyring is wrapped again under the new one, in one write (an interrupted rekey leaves the old one working). "
            + "Both are read from files, from standard input when it is redirected (the current, then the new, a line each), or from prompts without echo. "
            + "A key-share vault re-splits in three steps: --shares N --threshold T; each operator gives a current share (the last one sees the new shares); "
            + "holders of the new shares give them back with --verify (they take effect at the threshold)")
        {
            file, newFile, shares, threshold, shareFile, verify, reset,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            var client = ctx.Client;
            var status = await client.GetStatusAsync(ct);
            if (status.SecretThreshold > 0)
            {
                RekeyResponse step;
                if (ctx.Value(reset))
                {
                    step = await client.RekeyStepAsync(new RekeyRequest { Reset = true }, ct);
                }
                else if (ctx.Value(shares) is { } n)
                {
                    step = await client.RekeyStepAsync(new RekeyRequest { NewShares = (uint)Math.Max(0, n), NewThreshold = (uint)Math.Max(0, ctx.Value(threshold) ?? throw new UsageException("--shares needs --threshold")) }, ct);
                }
                else
                {
                    var share = ShareReader.Read(ctx.Console, ctx.Value(shareFile));
                    step = await client.RekeyStepAsync(ctx.Value(verify) ? new RekeyRequest { VerifyShare = share } : new RekeyRequest { Share = share }, ct);
                }
                PrintRekeyStep(ctx, step);
                return;
            }
            if (ctx.Value(shares) is not null || ctx.Value(verify) || ctx.Value(reset) || ctx.Value(shareFile) is not null)
            {
                throw new UsageException("this vault uses a passphrase: rekey changes it (--shares, --verify, --reset and --share-file are for key-share vaults)");
            }
            var current = PassphraseReader.Read(ctx.Console, ctx.Value(file), confirm: false);
            var next = ctx.Value(newFile) is { } path
                ? PassphraseReader.Read(ctx.Console, path, confirm: false)
                : ctx.Console.IsInputRedirected
                    ? ctx.Console.In.ReadLine() is { Length: > 0 } line ? line : throw new UsageException("no new passphrase given (the second line of standard input, or --new-passphrase-file)")
                    : PassphraseReader.ReadNew(ctx.Console);
            var rekeyed = await client.RekeyAsync(current, next, ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { RekeyedAt = Printer.Time(rekeyed.RekeyedAt) });
                return;
            }
            ctx.Out.Fields(("Rekeyed At", Printer.Human(rekeyed.RekeyedAt)));
            await ctx.Console.Error.WriteLineAsync("The passphrase was changed: the old one no longer unseals this vault.");
        });
        return command;
    }

    private static Command Seal()
    {
        var command = new Command("seal", "Seal the vault: the server forgets its keys until the next unseal");
        command.SetHandler(async (ctx, ct) => PrintStatus(ctx.Out, await ctx.Client.SealAsync(ct)));
        return command;
    }

    private static Command Status()
    {
        var command = new Command("status", "Show whether the vault is initialised and sealed (needs no token; exits 0 either way)");
        command.SetHandler(async (ctx, ct) => PrintStatus(ctx.Out, await ctx.Client.GetStatusAsync(ct)));
        return command;
    }

    private static Command RotateKey()
    {
        var command = new Command("rotate-key", "Add a new key-encryption key version; existing data is re-wrapped in the background");
        command.SetHandler(async (ctx, ct) =>
        {
            var rotated = await ctx.Client.RotateKeyAsync(ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { rotated.KeyVersion, RotatedAt = Printer.Time(rotated.RotatedAt) });
                return;
            }
            ctx.Out.Fields(("Key Version", rotated.KeyVersion.ToString()), ("Rotated At", Printer.Human(rotated.RotatedAt)));
        });
        return command;
    }

    private static void PrintStatus(Printer output, StatusResponse status)
    {
        if (output.IsJson)
        {
            output.Json(new
            {
                status.Initialized,
                status.Sealed,
                status.KeyVersion,
                status.RecordsPendingRewrap,
                status.Version,
                Kdf = status.Kdf is null ? null : new { status.Kdf.MemoryKib, status.Kdf.Iterations, status.Kdf.Parallelism },
                status.AuditFailure,
                status.StorageFailure,
                status.ListenerWarning,
                status.SecretShares,
                status.SecretThreshold,
                status.UnsealProgress,
                status.NodeId,
                status.Active,
                status.ActiveAddress,
                status.CommitIndex,
            });
            return;
        }
        List<(string, string)> fields =
        [
            ("Initialized", status.Initialized ? "true" : "false"),
            ("Sealed", status.Sealed ? "true" : "false"),
            ("Key Version", status.KeyVersion.ToString()),
            ("Records Pending Rewrap", status.RecordsPendingRewrap.ToString()),
            ("Server Version", status.Version),
            ("KDF", status.Kdf is null ? "-" : $"argon2id m={status.Kdf.MemoryKib}KiB t={status.Kdf.Iterations} p={status.Kdf.Parallelism}"),
        ];
        if (status.SecretThreshold > 0)
        {
            fields.Add(("Key Shares", $"{status.SecretThreshold} of {status.SecretShares} unseal"));
            if (status.Sealed)
            {
                fields.Add(("Unseal Progress", $"{status.UnsealProgress}/{status.SecretThreshold}"));
            }
        }
        if (status.NodeId.Length > 0)
        {
            fields.Add(("Node", status.NodeId));
            fields.Add(("Role", status.Active ? "active" : "standby"));
            fields.Add(("Active Node", status.ActiveAddress.Length > 0 ? status.ActiveAddress : "(none known)"));
            fields.Add(("Commit Index", status.CommitIndex.ToString()));
        }
        // Why requests are being refused, only while they are.
        if (status.AuditFailure.Length > 0)
        {
            fields.Add(("Audit Failure", status.AuditFailure));
        }
        if (status.StorageFailure.Length > 0)
        {
            fields.Add(("Storage Failure", status.StorageFailure));
        }
        if (status.ListenerWarning.Length > 0)
        {
            fields.Add(("Listener Warning", status.ListenerWarning));
        }
        output.Fields([.. fields]);
    }
}
