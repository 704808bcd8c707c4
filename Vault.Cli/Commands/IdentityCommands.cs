using System.CommandLine;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Cli.Input;
using Vault.Cli.Output;
using Vault.Protocol.V1;

namespace Vault.Cli.Commands;

/// <summary>
/// People: <c>vaultctl login</c>, <c>vaultctl userpass write|read|list|delete|unlock|change-password</c>
/// and <c>vaultctl identity entity|group write|read|list|delete</c>. Passwords come from a file,
/// from standard input or from a prompt without echo, never from an argument.
/// </summary>
internal static class IdentityCommands
{
    public static Command Login()
    {
        var method = new Option<string>("--method") { Description = "Login method: userpass (default) or ldap (your directory password)", DefaultValueFactory = _ => "userpass" };
        var username = new Option<string>("--username") { Description = "Your username", Required = true };
        var file = new Option<string>("--password-file") { Description = "Read the password from this file (default: standard input, or a prompt without echo)" };
        var noStore = new Option<bool>("--no-store") { Description = "Print the token only; do not store it in ~/.vault-token" };
        var command = new Command("login", "Log in as a person; stores the token in ~/.vault-token (mode 0600), which later commands use") { method, username, file, noStore };
        command.SetHandler(async (ctx, ct) =>
        {
            if (ctx.Value(method) is not ("userpass" or "ldap"))
            {
                throw new UsageException($"--method: '{ctx.Value(method)}' is not a login method this vault has (userpass, ldap)");
            }
            var ldap = ctx.Value(method) == "ldap";
            var password = ReadSecret(ctx.Console, ctx.Value(file), "--password-file", "Password: ", confirm: false)
                ?? throw new UsageException("no password given (type it at the prompt, pipe it on standard input, or use --password-file)");
            async Task<(string Token, TokenInfo Info)> LoginAsync(string? code)
            {
                if (ldap)
                {
                    var response = await ctx.Client.LdapLoginAsync(ctx.Value(username), password, code, ct);
                    return (response.Token, response.Info);
                }
                var userpass = await ctx.Client.UserpassLoginAsync(ctx.Value(username), password, code, ct);
                return (userpass.Token, userpass.Info);
            }
            (string Token, TokenInfo Info) login;
            try
            {
                login = await LoginAsync(code: null);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.FailedPrecondition && ex.Status.Detail.StartsWith("mfa required", StringComparison.Ordinal))
            {
                // Enrolled: the password was right; now the code (the next line of redirected input, or a prompt).
                var code = ReadCode(ctx.Console) ?? throw new UsageException("an MFA code is required: type it at the prompt, or give it on the line after the password");
                login = await LoginAsync(code);
            }
            if (!ctx.Value(noStore))
            {
                var path = TokenFile.Write(ctx.Console, login.Token);
                await ctx.Console.Error.WriteLineAsync($"Token stored in {path}; commands use it when VAULT_TOKEN and --token are unset.");
            }
            TokenCommands.PrintInfo(ctx.Out, login.Info, login.Token);
        });
        return command;
    }

    public static Command Mfa()
    {
        var command = new Command("mfa", "A second factor for people: TOTP enrolment, code validation (step-up), status and reset");
        var forEntity = new Option<string>("--entity") { Description = "Enrol this entity instead of yourself (an admin, for a person whose login requires MFA: give them the QR code)" };
        var enroll = new Command("enroll", "Enrol yourself: prints the otpauth URI as a QR code for your authenticator, and ten recovery codes (shown once); then run 'mfa validate' with a first code") { forEntity };
        enroll.SetHandler(async (ctx, ct) =>
        {
            var enrolled = await ctx.Client.EnrollMfaAsync(ctx.Value(forEntity), ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { enrolled.OtpauthUri, RecoveryCodes = enrolled.RecoveryCodes.ToList() });
                return;
            }
            using (var data = new QRCoder.QRCodeGenerator().CreateQrCode(enrolled.OtpauthUri, QRCoder.QRCodeGenerator.ECCLevel.M))
            using (var qr = new QRCoder.AsciiQRCode(data))
            {
                ctx.Out.Line(qr.GetGraphicSmall());
            }
            ctx.Out.Fields(("OTP URI", enrolled.OtpauthUri), ("Recovery Codes", string.Join(" ", enrolled.RecoveryCodes)));
            await ctx.Console.Error.WriteLineAsync("Scan the code (or enter the URI) in your authenticator, keep the recovery codes somewhere safe, then run: vaultctl mfa validate");
        });
        var validate = new Command("validate", "Validate a code for your token: completes an enrolment, and satisfies step-up rules for their window (code from standard input or a prompt)");
        validate.SetHandler(async (ctx, ct) =>
        {
            var code = ReadCode(ctx.Console) ?? throw new UsageException("no code given (type it at the prompt, or pipe it on standard input)");
            var result = await ctx.Client.ValidateMfaAsync(code, ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { ValidatedAt = Printer.Time(result.ValidatedAt), result.RecoveryCodesLeft });
                return;
            }
            ctx.Out.Fields(("Validated", Printer.Human(result.ValidatedAt)), ("Recovery Codes Left", result.RecoveryCodesLeft.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        });
        command.Subcommands.Add(enroll);
        command.Subcommands.Add(validate);
        command.Subcommands.Add(Named("status", "Show whether an entity is enrolled", "Entity name", async (ctx, name, ct) =>
        {
            var status = await ctx.Client.GetMfaAsync(name, ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { status.Entity, status.Enrolled, status.Pending, status.RecoveryCodesLeft, EnrolledAt = Printer.Time(status.EnrolledAt) });
                return;
            }
            ctx.Out.Fields(
                ("Entity", status.Entity),
                ("Enrolled", status.Enrolled ? "yes" : status.Pending ? "pending (no code validated yet)" : "no"),
                ("Recovery Codes Left", status.RecoveryCodesLeft.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ("Enrolled At", status.EnrolledAt is null ? "-" : Printer.Human(status.EnrolledAt)));
        }));
        command.Subcommands.Add(Named("reset", "Remove an entity's enrolment (a lost authenticator): they log in with their password alone and enrol again", "Entity name", async (ctx, name, ct) =>
        {
            await ctx.Client.ResetMfaAsync(name, ct);
            ctx.Out.Deleted("MFA enrolment of", name);
        }));
        return command;
    }

    /// <summary>A one-time code: a line of redirected standard input, or a prompt; null when empty.</summary>
    private static string? ReadCode(CliConsole console)
    {
        var code = console.IsInputRedirected ? console.In.ReadLine() : PassphraseReader.Prompt(console, "MFA code: ");
        return string.IsNullOrWhiteSpace(code) ? null : code.Trim();
    }

    public static Command Ldap()
    {
        var command = new Command("ldap", "Directory login for people: where the directory is, how it is trusted, and what its groups map to");
        var url = new Option<string>("--url") { Description = "ldap://host:port (StartTLS) or ldaps://host:port", Required = true };
        var ca = new Option<string>("--ca-cert") { Description = "PEM file of the CA that signed the directory's certificate", Required = true };
        var userDn = new Option<string>("--user-dn") { Description = "The person's DN with {{username}}, e.g. uid={{username}},ou=people,dc=example,dc=com", Required = true };
        var groupBase = new Option<string>("--group-base") { Description = "Where groups are, e.g. ou=groups,dc=example,dc=com", Required = true };
        var groupAttribute = new Option<string>("--group-attribute") { Description = "The attribute that names a group (default cn)" };
        var map = new Option<string[]>("--map") { Description = "DIRECTORY_GROUP=VAULT_GROUP (repeatable)" };
        var tokenTtl = new Option<string>("--token-ttl") { Description = "Lifetime of a login's token (default 1h)" };
        var requireMfa = new Option<bool>("--require-mfa") { Description = "Every directory login needs a second factor (admins enrol people first)" };
        var write = new Command("config", "Configure directory login (replaces the configuration)") { url, ca, userDn, groupBase, groupAttribute, map, tokenTtl, requireMfa };
        write.SetHandler(async (ctx, ct) =>
        {
            var config = new LdapConfig
            {
                Url = ctx.Value(url),
                StartTls = ctx.Value(url).StartsWith("ldap://", StringComparison.Ordinal),
                CaCertificatePem = ArgumentParsers.ReadFile(ctx.Value(ca), "--ca-cert"),
                UserDnTemplate = ctx.Value(userDn),
                GroupBaseDn = ctx.Value(groupBase),
                GroupAttribute = ctx.Value(groupAttribute) ?? "",
                RequireMfa = ctx.Value(requireMfa),
            };
            foreach (var pair in ctx.Value(map) ?? [])
            {
                var at = pair.IndexOf('=', StringComparison.Ordinal);
                if (at <= 0 || at == pair.Length - 1)
                {
                    throw new UsageException($"--map: '{pair}' is not DIRECTORY_GROUP=VAULT_GROUP");
                }
                config.GroupMap[pair[..at]] = pair[(at + 1)..];
            }
            if (ctx.Value(tokenTtl) is { } ttl)
            {
                config.TokenTtl = Duration.FromTimeSpan(DurationParser.Parse(ttl, "--token-ttl"));
            }
            var stored = await ctx.Client.SetLdapConfigAsync(config, ct);
            ctx.Out.Fields(("URL", stored.Url), ("User DN", stored.UserDnTemplate), ("Groups", $"{stored.GroupAttribute} under {stored.GroupBaseDn}"),
                ("Group Map", stored.GroupMap.Count == 0 ? "-" : string.Join(", ", stored.GroupMap.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"))));
        });
        command.Subcommands.Add(write);
        return command;
    }

    public static Command Userpass()
    {
        var command = new Command("userpass", "People's username-and-password logins: users, lockouts, password changes");
        command.Subcommands.Add(UserWrite());
        command.Subcommands.Add(UserRead());
        command.Subcommands.Add(Plain("list", "List users", (ctx, ct) => ListAsync(ctx, ctx.Client.ListUsersAsync(ct))));
        command.Subcommands.Add(UserDelete());
        command.Subcommands.Add(Unlock());
        command.Subcommands.Add(ChangePassword());
        var requireMfa = new Option<bool?>("--require-mfa") { Description = "Every login needs a second factor (true|false)" };
        var config = new Command("config", "Show how userpass logs people in, or change it with --require-mfa") { requireMfa };
        config.SetHandler(async (ctx, ct) =>
        {
            var current = ctx.Value(requireMfa) is { } require
                ? await ctx.Client.SetUserpassConfigAsync(require, ct)
                : await ctx.Client.GetUserpassConfigAsync(ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { current.RequireMfa });
                return;
            }
            ctx.Out.Fields(("Require MFA", current.RequireMfa ? "yes: every login needs a code" : "no: only people enrolled"));
        });
        command.Subcommands.Add(config);
        return command;
    }

    public static Command Identity()
    {
        var command = new Command("identity", "People as entities (one per person, whatever the login) and groups that carry policies");
        var entity = new Command("entity", "Entities: one per person");
        entity.Subcommands.Add(EntityWrite());
        entity.Subcommands.Add(Named("read", "Show an entity", "Entity name", async (ctx, name, ct) => PrintEntity(ctx.Out, await ctx.Client.GetEntityAsync(name, ct))));
        entity.Subcommands.Add(Plain("list", "List entities", (ctx, ct) => ListAsync(ctx, ctx.Client.ListEntitiesAsync(ct))));
        entity.Subcommands.Add(Named("delete", "Delete an entity: it leaves its groups and its tokens stop working", "Entity name", async (ctx, name, ct) =>
        {
            await ctx.Client.DeleteEntityAsync(name, ct);
            ctx.Out.Deleted("Entity", name);
        }));
        var group = new Command("group", "Groups of entities, carrying policies");
        group.Subcommands.Add(GroupWrite());
        group.Subcommands.Add(Named("read", "Show a group", "Group name", async (ctx, name, ct) => PrintGroup(ctx.Out, await ctx.Client.GetGroupAsync(name, ct))));
        group.Subcommands.Add(Plain("list", "List groups", (ctx, ct) => ListAsync(ctx, ctx.Client.ListGroupsAsync(ct))));
        group.Subcommands.Add(Named("delete", "Delete a group; its members lose its policies", "Group name", async (ctx, name, ct) =>
        {
            await ctx.Client.DeleteGroupAsync(name, ct);
            ctx.Out.Deleted("Group", name);
        }));
        command.Subcommands.Add(entity);
        command.Subcommands.Add(group);
        return command;
    }

    private static Command UserWrite()
    {
        var name = new Argument<string>("name") { Description = "Username" };
        var entity = new Option<string>("--entity") { Description = "The entity (person) the user logs in as (default: the entity named like the user, created if missing)" };
        var policies = new Option<string[]>("--policy") { Description = "Policy of the user's tokens, on top of the entity's and its groups' (repeatable)" };
        var tokenTtl = new Option<string>("--token-ttl") { Description = "Lifetime of a login's token (default 1h)" };
        var tokenMaxTtl = new Option<string>("--token-max-ttl") { Description = "Renewal limit of a login's token (default 24h)" };
        var file = new Option<string>("--password-file") { Description = "Read the password from this file (default: standard input, or a prompt; empty keeps an existing user's password)" };
        var command = new Command("write", "Create or replace a user; a password given resets theirs and ends a lockout") { name, entity, policies, tokenTtl, tokenMaxTtl, file };
        command.SetHandler(async (ctx, ct) =>
        {
            var user = new User { Name = ctx.Value(name), Entity = ctx.Value(entity) ?? "" };
            user.Policies.AddRange(ctx.Value(policies) ?? []);
            if (ctx.Value(tokenTtl) is { } t)
            {
                user.TokenTtl = Duration.FromTimeSpan(DurationParser.Parse(t, "--token-ttl"));
            }
            if (ctx.Value(tokenMaxTtl) is { } m)
            {
                user.TokenMaxTtl = Duration.FromTimeSpan(DurationParser.Parse(m, "--token-max-ttl"));
            }
            var password = ReadSecret(ctx.Console, ctx.Value(file), "--password-file", "Password (empty keeps the current one): ", confirm: true);
            PrintUser(ctx.Out, await ctx.Client.PutUserAsync(user, password, ct));
        });
        return command;
    }

    private static Command UserRead() =>
        Named("read", "Show a user, with failed logins and any lockout", "Username", async (ctx, name, ct) => PrintUser(ctx.Out, await ctx.Client.GetUserAsync(name, ct)));

    private static Command UserDelete() =>
        Named("delete", "Delete a user (their entity stays)", "Username", async (ctx, name, ct) =>
        {
            await ctx.Client.DeleteUserAsync(name, ct);
            ctx.Out.Deleted("User", name);
        });

    private static Command Unlock() =>
        Named("unlock", "End a user's lockout and clear their failed logins", "Username", async (ctx, name, ct) => PrintUser(ctx.Out, await ctx.Client.UnlockUserAsync(name, ct)));

    private static Command ChangePassword()
    {
        var name = new Argument<string>("name") { Description = "Your username" };
        var command = new Command("change-password", "Change your password, proving it with the current one (prompts; or two lines on standard input: current, new)") { name };
        command.SetHandler(async (ctx, ct) =>
        {
            string? current;
            string? next;
            if (ctx.Console.IsInputRedirected)
            {
                current = ctx.Console.In.ReadLine();
                next = ctx.Console.In.ReadLine();
            }
            else
            {
                current = PassphraseReader.Prompt(ctx.Console, "Current password: ");
                next = PassphraseReader.Prompt(ctx.Console, "New password: ");
                if (next.Length > 0 && PassphraseReader.Prompt(ctx.Console, "Repeat new password: ") != next)
                {
                    throw new UsageException("the new passwords do not match");
                }
            }
            if (string.IsNullOrEmpty(current) || string.IsNullOrEmpty(next))
            {
                throw new UsageException("give the current password and the new one (prompts, or two lines on standard input)");
            }
            await ctx.Client.ChangePasswordAsync(ctx.Value(name), current, next, ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { Changed = true });
                return;
            }
            ctx.Out.Line($"Password of {ctx.Value(name)} changed");
        });
        return command;
    }

    private static Command EntityWrite()
    {
        var name = new Argument<string>("name") { Description = "Entity name" };
        var policies = new Option<string[]>("--policy") { Description = "Policy the person holds directly (repeatable)" };
        var disabled = new Option<bool>("--disabled") { Description = "Refuse the entity's tokens and logins" };
        var command = new Command("write", "Create or replace an entity") { name, policies, disabled };
        command.SetHandler(async (ctx, ct) =>
        {
            var entity = new Entity { Name = ctx.Value(name), Disabled = ctx.Value(disabled) };
            entity.Policies.AddRange(ctx.Value(policies) ?? []);
            PrintEntity(ctx.Out, await ctx.Client.PutEntityAsync(entity, ct));
        });
        return command;
    }

    private static Command GroupWrite()
    {
        var name = new Argument<string>("name") { Description = "Group name" };
        var policies = new Option<string[]>("--policy") { Description = "Policy the group's members hold (repeatable)" };
        var members = new Option<string[]>("--member") { Description = "Entity in the group (repeatable; the list replaces the old one)" };
        var command = new Command("write", "Create or replace a group") { name, policies, members };
        command.SetHandler(async (ctx, ct) =>
        {
            var group = new Group { Name = ctx.Value(name) };
            group.Policies.AddRange(ctx.Value(policies) ?? []);
            group.Members.AddRange(ctx.Value(members) ?? []);
            PrintGroup(ctx.Out, await ctx.Client.PutGroupAsync(group, ct));
        });
        return command;
    }

    /// <summary>A command taking one name.</summary>
    private static Command Named(string verb, string description, string what, Func<CommandContext, string, CancellationToken, Task> run)
    {
        var name = new Argument<string>("name") { Description = what };
        var command = new Command(verb, description) { name };
        command.SetHandler((ctx, ct) => run(ctx, ctx.Value(name), ct));
        return command;
    }

    /// <summary>A command taking nothing.</summary>
    private static Command Plain(string verb, string description, Func<CommandContext, CancellationToken, Task> run)
    {
        var command = new Command(verb, description);
        command.SetHandler(run);
        return command;
    }

    private static async Task ListAsync(CommandContext ctx, Task<IReadOnlyList<string>> names) => ctx.Out.Names("names", await names);

    /// <summary>A secret from <paramref name="file"/>, else a line of redirected standard input, else a prompt without echo; null when empty.</summary>
    private static string? ReadSecret(CliConsole console, string? file, string fileOption, string prompt, bool confirm)
    {
        string? secret;
        if (file is not null)
        {
            secret = PassphraseReader.TrimNewline(ArgumentParsers.ReadFile(file, fileOption));
        }
        else if (console.IsInputRedirected)
        {
            secret = console.In.ReadLine();
        }
        else
        {
            secret = PassphraseReader.Prompt(console, prompt);
            if (confirm && secret.Length > 0 && PassphraseReader.Prompt(console, "Repeat: ") != secret)
            {
                throw new UsageException("the passwords do not match");
            }
        }
        return string.IsNullOrEmpty(secret) ? null : secret;
    }

    private static void PrintUser(Printer output, User user)
    {
        if (output.IsJson)
        {
            output.Json(new
            {
                user.Name,
                user.Entity,
                Policies = user.Policies.ToList(),
                TokenTtlSeconds = (long?)user.TokenTtl?.ToTimeSpan().TotalSeconds,
                TokenMaxTtlSeconds = (long?)user.TokenMaxTtl?.ToTimeSpan().TotalSeconds,
                user.FailedLogins,
                user.Lockouts,
                LockedUntil = Printer.Time(user.LockedUntil),
                PasswordChangedAt = Printer.Time(user.PasswordChangedAt),
            });
            return;
        }
        output.Fields(
            ("Name", user.Name),
            ("Entity", user.Entity),
            ("Policies", user.Policies.Count == 0 ? "-" : string.Join(", ", user.Policies)),
            ("Token TTL", user.TokenTtl is null ? "-" : DurationParser.Format(user.TokenTtl.ToTimeSpan())),
            ("Token Max TTL", user.TokenMaxTtl is null ? "-" : DurationParser.Format(user.TokenMaxTtl.ToTimeSpan())),
            ("Failed Logins", user.FailedLogins.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("Locked Until", user.LockedUntil is null ? "-" : Printer.Human(user.LockedUntil)),
            ("Lockouts", user.Lockouts.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("Password Changed", Printer.Human(user.PasswordChangedAt)));
    }

    private static void PrintEntity(Printer output, Entity entity)
    {
        if (output.IsJson)
        {
            output.Json(new { entity.Name, entity.Id, Policies = entity.Policies.ToList(), Groups = entity.Groups.ToList(), entity.Disabled });
            return;
        }
        output.Fields(
            ("Name", entity.Name),
            ("ID", entity.Id),
            ("Policies", entity.Policies.Count == 0 ? "-" : string.Join(", ", entity.Policies)),
            ("Groups", entity.Groups.Count == 0 ? "-" : string.Join(", ", entity.Groups)),
            ("Disabled", entity.Disabled ? "yes" : "no"));
    }

    private static void PrintGroup(Printer output, Group group)
    {
        if (output.IsJson)
        {
            output.Json(new { group.Name, Policies = group.Policies.ToList(), Members = group.Members.ToList() });
            return;
        }
        output.Fields(
            ("Name", group.Name),
            ("Policies", group.Policies.Count == 0 ? "-" : string.Join(", ", group.Policies)),
            ("Members", group.Members.Count == 0 ? "-" : string.Join(", ", group.Members)));
    }
}
