using System.CommandLine;
using Google.Protobuf.WellKnownTypes;
using Vault.Cli.Input;
using Vault.Cli.Output;
using Vault.Protocol.V1;

namespace Vault.Cli.Commands;

/// <summary><c>vaultctl target add|list|show|rotate|history|pause|resume|delete|credential</c>: password rotation targets.</summary>
internal static class TargetCommands
{
    public static Command Build()
    {
        var command = new Command("target", "Accounts on other systems (postgres, mysql, ldap) whose passwords the vault rotates");
        command.Subcommands.Add(Add());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Show());
        command.Subcommands.Add(Rotate());
        command.Subcommands.Add(History());
        command.Subcommands.Add(Pause());
        command.Subcommands.Add(Resume());
        command.Subcommands.Add(Delete());
        command.Subcommands.Add(Credential());
        return command;
    }

    private static Argument<string> NameArgument() => new("name") { Description = "Target name (letters, digits, '-', '_', '.')" };

    private static Command Add()
    {
        var name = NameArgument();
        var kind = new Option<string>("--kind") { Description = "Rotator: postgres, mysql or ldap", Required = true };
        var host = new Option<string>("--host") { Description = "Host name or address of the system", Required = true };
        var port = new Option<uint>("--port") { Description = "TCP port (default: the kind's, 5432, 3306 or 389)" };
        var database = new Option<string>("--database") { Description = "Database to connect to (postgres, mysql) or base DN (ldap)" };
        var options = new Option<string[]>("--option") { Description = "Kind-specific connection setting KEY=VALUE (repeatable), e.g. ssl_mode=require; never a secret" };
        var caFile = new Option<string>("--ca-file") { Description = "PEM file of the CA certificates the system's TLS certificate must chain to (stored with the target; default: the machine's trusted CAs)" };
        var pin = new Option<string>("--pin") { Description = "Also require this certificate key: sha256:<base64 SHA-256 of its SubjectPublicKeyInfo>" };
        var account = new Option<string>("--account") { Description = "Account to rotate: postgres role, mysql user or user@host, ldap DN", Required = true };
        var secondAccount = new Option<string>("--second-account") { Description = "Second account, for --strategy alternating-users" };
        var adminSecret = new Option<string>("--admin-secret") { Description = "KV path of the admin credential (fields username and password) the vault logs in with", Required = true };
        var managesAdmin = new Option<bool>("--manages-admin-secret") { Description = "The account is the admin credential itself: each rotation also writes the new password to --admin-secret" };
        var strategy = new Option<string>("--strategy") { Description = "single-user (default): change the password in place; alternating-users: change the inactive one of two accounts, then switch" };
        var interval = new Option<string>("--interval") { Description = "Rotate every interval, e.g. 24h, 7d (or give --cron)" };
        var cron = new Option<string>("--cron") { Description = "Rotate at each occurrence of a cron expression, UTC, e.g. '0 3 * * *' (or give --interval)" };
        var window = new Option<string>("--window") { Description = "Start rotations only inside this daily window, HH:MM-HH:MM UTC (may wrap midnight), e.g. 01:00-05:00" };
        var maxJitter = new Option<string>("--max-jitter") { Description = "Largest delay added to each due time, e.g. 5m; 0 for none (default: a tenth of the interval, at most 5m)" };
        var length = new Option<uint?>("--length") { Description = "Length of generated passwords, 8 to 256 (default 32)" };
        var alphabet = new Option<string>("--alphabet") { Description = "Characters generated passwords may use: printable ASCII, no space (default: letters, digits, '-', '_')" };
        var require = new Option<string>("--require") { Description = "Character classes every password must contain, comma-separated: lower, upper, digit, symbol, or none (default lower,upper,digit without --alphabet, none with it)" };
        var rotateNow = new Option<bool>("--rotate-now") { Description = "Start a rotation in the background right after registering (no current password needed; 'target rotate' waits instead)" };
        var passwordFile = new Option<string>("--current-password-file") { Description = "Read the account's password today from this file (one trailing newline ignored)" };
        var passwordStdin = new Option<bool>("--current-password-stdin") { Description = "Read the account's password today from standard input (or a prompt without echo)" };
        var secondPasswordFile = new Option<string>("--second-current-password-file") { Description = "Read the second account's password today from this file" };
        var skipVerify = new Option<bool>("--skip-verify") { Description = "Store the target without first checking on its system that the admin credential logs in and the account exists (for a system that is down during onboarding)" };
        var command = new Command("add",
            "Register a rotation target, or replace an existing target's configuration. A new target needs the account's current "
            + "password (from a file or standard input, never an argument) unless --rotate-now is given. The vault first checks on the "
            + "system that the admin credential logs in and the account exists, unless --skip-verify is given.")
        {
            name, kind, host, port, database, options, caFile, pin, account, secondAccount, adminSecret, managesAdmin, strategy,
            interval, cron, window, maxJitter, length, alphabet, require, rotateNow, passwordFile, passwordStdin, secondPasswordFile, skipVerify,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            // Everything local is checked before anything is read from standard input or sent. A
            // port's range is not local: the server checks it in one place, for every client.
            var target = new Target
            {
                Name = ctx.Value(name),
                Kind = ctx.Value(kind),
                Connection = new TargetConnection
                {
                    Host = ctx.Value(host),
                    Port = ctx.Value(port),
                    Database = ctx.Value(database) ?? "",
                    CaCertificates = ctx.Value(caFile) is { } ca ? ArgumentParsers.ReadFile(ca, "--ca-file") : "",
                    CertificatePin = ctx.Value(pin) ?? "",
                },
                Account = ctx.Value(account),
                SecondAccount = ctx.Value(secondAccount) ?? "",
                AdminSecret = ctx.Value(adminSecret),
                ManagesAdminSecret = ctx.Value(managesAdmin),
                Strategy = ctx.Value(strategy) switch
                {
                    null or "single-user" => RotationStrategy.SingleUser,
                    "alternating-users" => RotationStrategy.AlternatingUsers,
                    var other => throw new UsageException($"--strategy: '{other}' is not single-user or alternating-users"),
                },
                Schedule = Schedule(ctx.Value(interval), ctx.Value(cron), ctx.Value(window), ctx.Value(maxJitter)),
                PasswordPolicy = Policy(ctx.Value(length), ctx.Value(alphabet), ctx.Value(require)),
            };
            target.Connection.Options.Add(TargetInput.Options(ctx.Value(options) ?? [], "--option"));
            if (ctx.Value(passwordFile) is not null && ctx.Value(passwordStdin))
            {
                throw new UsageException("--current-password-file and --current-password-stdin: give one of the two");
            }

            string? current = null;
            if (ctx.Value(passwordFile) is { } file)
            {
                current = await SecretValueReader.ReadAsync(ctx.Console, file, "--current-password-file", "current password", ct);
            }
            else if (ctx.Value(passwordStdin))
            {
                current = await SecretValueReader.ReadAsync(ctx.Console, null, "--current-password-file", "current password", ct);
            }
            var secondCurrent = ctx.Value(secondPasswordFile) is { } secondFile
                ? await SecretValueReader.ReadAsync(ctx.Console, secondFile, "--second-current-password-file", "second current password", ct)
                : null;
            TargetPrinter.Print(ctx.Out, await ctx.Client.PutTargetAsync(target, ctx.Value(rotateNow), current, secondCurrent, ctx.Value(skipVerify), ct));
        });
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List targets with their state, version and next rotation");
        command.SetHandler(async (ctx, ct) =>
        {
            var targets = await ctx.Client.ListTargetsAsync(ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { Targets = targets.Select(TargetPrinter.Json).ToList() });
                return;
            }
            ctx.Out.Table(TargetPrinter.ListHeaders, targets.Select(TargetPrinter.ListRow).ToList());
        });
        return command;
    }

    private static Command Show()
    {
        var name = NameArgument();
        var command = new Command("show", "Show a target's configuration and status (never a password)") { name };
        command.SetHandler(async (ctx, ct) => TargetPrinter.Print(ctx.Out, await ctx.Client.GetTargetAsync(ctx.Value(name), ct)));
        return command;
    }

    private static Command Rotate()
    {
        var name = NameArgument();
        var command = new Command("rotate", "Rotate a target's password now and wait for the outcome; a rotation that did not succeed exits 2") { name };
        command.SetHandler(async (ctx, ct) =>
        {
            var rotated = await ctx.Client.RotateTargetAsync(ctx.Value(name), ct);
            var e = rotated.Event ?? new RotationEvent();
            var succeeded = e.Outcome == RotationOutcome.Succeeded;
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { Target = TargetPrinter.Json(rotated.Target ?? new Target()), Event = TargetPrinter.Json(e) });
            }
            else if (succeeded)
            {
                ctx.Out.Fields(
                    ("Target", ctx.Value(name)),
                    ("Outcome", TargetPrinter.Name(e.Outcome)),
                    ("Account", e.Account.Length == 0 ? "-" : e.Account),
                    ("Version", e.Version.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                    ("Rotated", Printer.Human(e.FinishedAt ?? e.StartedAt)),
                    ("Next Rotation", Printer.Human(rotated.Target?.Status?.NextRotationAt)));
            }
            if (!succeeded)
            {
                var outcome = e.Outcome == RotationOutcome.Failed ? "" : $" ({TargetPrinter.Name(e.Outcome)})";
                var step = e.Step.Length == 0 ? "" : $" at {e.Step}";
                throw new RotationFailedException($"rotation of {ctx.Value(name)} failed{outcome}{step}: {(e.Reason.Length == 0 ? "no reason given" : e.Reason)}");
            }
        });
        return command;
    }

    private static Command History()
    {
        var name = NameArgument();
        var limit = new Option<uint>("--limit") { Description = "Show at most the newest N events (default 50, at most 1000)" };
        var command = new Command("history", "Show a target's rotations, failures, reconciliations and drift findings, newest first") { name, limit };
        command.SetHandler(async (ctx, ct) =>
        {
            var events = await ctx.Client.ListTargetHistoryAsync(ctx.Value(name), ctx.Value(limit), ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { Events = events.Select(TargetPrinter.Json).ToList() });
                return;
            }
            ctx.Out.Table(TargetPrinter.HistoryHeaders, events.Select(TargetPrinter.HistoryRow).ToList());
        });
        return command;
    }

    private static Command Pause()
    {
        var name = NameArgument();
        var command = new Command("pause", "Stop rotating a target (scheduled and manual) until it is resumed") { name };
        command.SetHandler(async (ctx, ct) =>
        {
            var target = await ctx.Client.PauseTargetAsync(ctx.Value(name), ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(TargetPrinter.Json(target));
                return;
            }
            ctx.Out.Line($"Target '{target.Name}' paused");
        });
        return command;
    }

    private static Command Resume()
    {
        var name = NameArgument();
        var command = new Command("resume", "Resume rotating a paused target") { name };
        command.SetHandler(async (ctx, ct) =>
        {
            var target = await ctx.Client.ResumeTargetAsync(ctx.Value(name), ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(TargetPrinter.Json(target));
                return;
            }
            var next = target.Status?.NextRotationAt;
            ctx.Out.Line(next is null ? $"Target '{target.Name}' resumed" : $"Target '{target.Name}' resumed; next rotation {Printer.Human(next)}");
        });
        return command;
    }

    private static Command Delete()
    {
        var name = NameArgument();
        var force = new Option<bool>("--force") { Description = "Delete even while a pending password awaits reconciliation (it may be the one the system holds)" };
        var command = new Command("delete", "Forget a target and its history (the account keeps its current password)") { name, force };
        command.SetHandler(async (ctx, ct) =>
        {
            await ctx.Client.DeleteTargetAsync(ctx.Value(name), ctx.Value(force), ct);
            ctx.Out.Deleted("Target", ctx.Value(name));
        });
        return command;
    }

    private static Command Credential()
    {
        var name = NameArgument();
        var field = new Option<string>("--field") { Description = "Print only this field's value: username or password" };
        var command = new Command("credential", "Print the username and password applications should use now (the password is shown)") { name, field };
        command.SetHandler(async (ctx, ct) =>
        {
            if (ctx.Value(field) is not (null or "username" or "password"))
            {
                throw new UsageException($"--field: '{ctx.Value(field)}' is not username or password");
            }
            var credential = await ctx.Client.GetTargetCredentialAsync(ctx.Value(name), ct);
            if (ctx.Value(field) is { } only)
            {
                var value = only == "username" ? credential.Username : credential.Password;
                ctx.Out.Field(value);
                return;
            }
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new
                {
                    credential.Username,
                    credential.Password,
                    credential.Version,
                    RotatedAt = Printer.Time(credential.RotatedAt),
                    NextRotationAt = Printer.Time(credential.NextRotationAt),
                });
                return;
            }
            ctx.Out.Fields(
                ("Username", credential.Username),
                ("Password", credential.Password),
                ("Version", credential.Version.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ("Rotated", Printer.Human(credential.RotatedAt)),
                ("Next Rotation", Printer.Human(credential.NextRotationAt)));
        });
        return command;
    }

    /// <summary>The schedule options as a message; null when none is given (the server's default applies).</summary>
    /// <exception cref="UsageException">Both an interval and a cron expression, or a malformed duration or window.</exception>
    private static RotationSchedule? Schedule(string? interval, string? cron, string? window, string? maxJitter)
    {
        if (interval is not null && cron is not null)
        {
            throw new UsageException("--interval and --cron: give one of the two");
        }
        if (interval is null && cron is null && window is null && maxJitter is null)
        {
            return null;
        }
        var schedule = new RotationSchedule { Cron = cron ?? "" };
        if (interval is not null)
        {
            schedule.Interval = Duration.FromTimeSpan(DurationParser.Parse(interval, "--interval"));
        }
        if (window is not null)
        {
            (schedule.WindowStart, schedule.WindowEnd) = TargetInput.Window(window, "--window");
        }
        if (maxJitter is not null)
        {
            schedule.MaxJitter = Duration.FromTimeSpan(TargetInput.Jitter(maxJitter, "--max-jitter"));
        }
        return schedule;
    }

    /// <summary>The password options as a message; null when none is given (the server's default policy applies).</summary>
    /// <exception cref="UsageException">An unknown character class.</exception>
    private static PasswordPolicy? Policy(uint? length, string? alphabet, string? require)
    {
        if (length is null && alphabet is null && require is null)
        {
            return null;
        }
        // Without --require, a policy that keeps the default alphabet keeps the default's classes;
        // a custom alphabet may lack some of them, so it requires none unless told.
        HashSet<string> classes = require is not null ? TargetInput.RequiredClasses(require, "--require")
            : alphabet is null ? ["lower", "upper", "digit"]
            : [];
        return new PasswordPolicy
        {
            Length = length ?? 0,
            Alphabet = alphabet ?? "",
            RequireLower = classes.Contains("lower"),
            RequireUpper = classes.Contains("upper"),
            RequireDigit = classes.Contains("digit"),
            RequireSymbol = classes.Contains("symbol"),
        };
    }
}
