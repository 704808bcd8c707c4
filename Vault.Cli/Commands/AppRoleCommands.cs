using System.CommandLine;
using Google.Protobuf.WellKnownTypes;
using Vault.Cli.Input;
using Vault.Cli.Output;
using Vault.Protocol.V1;

namespace Vault.Cli.Commands;

/// <summary><c>vaultctl approle write|read|list|delete|role-id|secret-id|destroy-secret-id|login</c>.</summary>
internal static class AppRoleCommands
{
    public static Command Build()
    {
        var command = new Command("approle", "Machine login: roles, role ids, secret ids, login");
        command.Subcommands.Add(Write());
        command.Subcommands.Add(Read());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Delete());
        command.Subcommands.Add(RoleId());
        command.Subcommands.Add(SecretId());
        command.Subcommands.Add(DestroySecretId());
        command.Subcommands.Add(Login());
        return command;
    }

    private static Argument<string> NameArgument() => new("name") { Description = "Role name" };

    private static Command Write()
    {
        var name = NameArgument();
        var policies = new Option<string[]>("--policy") { Description = "Policy the role's tokens get (repeatable, at least one)", Required = true };
        var tokenTtl = new Option<string>("--token-ttl") { Description = "Lifetime of a login's token (default 1h)" };
        var tokenMaxTtl = new Option<string>("--token-max-ttl") { Description = "Renewal limit of a login's token (default 24h)" };
        var secretIdTtl = new Option<string>("--secret-id-ttl") { Description = "Lifetime of a secret id (default 24h)" };
        var uses = new Option<uint>("--secret-id-uses") { Description = "Logins a secret id allows (default 0: unlimited)" };
        var cidrs = new Option<string[]>("--bound-cidr") { Description = "Accept logins only from this network (repeatable), e.g. 10.0.0.0/8" };
        var command = new Command("write", "Create or replace a role") { name, policies, tokenTtl, tokenMaxTtl, secretIdTtl, uses, cidrs };
        command.SetHandler(async (ctx, ct) =>
        {
            var role = new Role { Name = ctx.Value(name), SecretIdNumUses = ctx.Value(uses) };
            role.Policies.AddRange(ctx.Value(policies) ?? []);
            role.BoundCidrs.AddRange(ctx.Value(cidrs) ?? []);
            if (ctx.Value(tokenTtl) is { } t)
            {
                role.TokenTtl = Duration.FromTimeSpan(DurationParser.Parse(t, "--token-ttl"));
            }
            if (ctx.Value(tokenMaxTtl) is { } m)
            {
                role.TokenMaxTtl = Duration.FromTimeSpan(DurationParser.Parse(m, "--token-max-ttl"));
            }
            if (ctx.Value(secretIdTtl) is { } s)
            {
                role.SecretIdTtl = Duration.FromTimeSpan(DurationParser.Parse(s, "--secret-id-ttl"));
            }
            PrintRole(ctx.Out, await ctx.Client.PutRoleAsync(role, ct));
        });
        return command;
    }

    private static Command Read()
    {
        var name = NameArgument();
        var command = new Command("read", "Show a role") { name };
        command.SetHandler(async (ctx, ct) => PrintRole(ctx.Out, await ctx.Client.GetRoleAsync(ctx.Value(name), ct)));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List roles");
        command.SetHandler(async (ctx, ct) =>
        {
            ctx.Out.Names("names", await ctx.Client.ListRolesAsync(ct));
        });
        return command;
    }

    private static Command Delete()
    {
        var name = NameArgument();
        var command = new Command("delete", "Delete a role and every secret id issued for it") { name };
        command.SetHandler(async (ctx, ct) =>
        {
            await ctx.Client.DeleteRoleAsync(ctx.Value(name), ct);
            ctx.Out.Deleted("Role", ctx.Value(name));
        });
        return command;
    }

    private static Command RoleId()
    {
        var name = NameArgument();
        var command = new Command("role-id", "Print a role's role id (not secret; give it to the application's deployment)") { name };
        command.SetHandler(async (ctx, ct) =>
        {
            var roleId = await ctx.Client.GetRoleIdAsync(ctx.Value(name), ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { RoleId = roleId });
                return;
            }
            ctx.Out.Line(roleId);
        });
        return command;
    }

    private static Command DestroySecretId()
    {
        var name = NameArgument();
        var accessor = new Argument<string>("accessor") { Description = "The secret id's accessor (secret_id_accessor when it was issued)" };
        var command = new Command("destroy-secret-id", "Destroy one secret id of a role, by its accessor: it can no longer log in") { name, accessor };
        command.SetHandler(async (ctx, ct) =>
        {
            await ctx.Client.DestroySecretIdAsync(ctx.Value(name), ctx.Value(accessor), ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { Name = ctx.Value(name), Accessor = ctx.Value(accessor), Destroyed = true });
                return;
            }
            ctx.Out.Line($"secret id {ctx.Value(accessor)} of role '{ctx.Value(name)}' destroyed");
        });
        return command;
    }

    private static Command SecretId()
    {
        var name = NameArgument();
        var field = new Option<string>("--field") { Description = "Print only this field's value: secret_id or secret_id_accessor" };
        var command = new Command("secret-id", "Issue a secret id for a role (printed once; the vault keeps only its hash)") { name, field };
        command.SetHandler(async (ctx, ct) =>
        {
            // Checked before the call, so a mistyped field does not issue a secret id nobody sees.
            if (ctx.Value(field) is not (null or "secret_id" or "secret_id_accessor"))
            {
                throw new UsageException($"--field: '{ctx.Value(field)}' is not secret_id or secret_id_accessor");
            }
            var issued = await ctx.Client.CreateSecretIdAsync(ctx.Value(name), ct);
            if (ctx.Value(field) is { } only)
            {
                var value = only == "secret_id" ? issued.SecretId : issued.SecretIdAccessor;
                ctx.Out.Field(value);
                return;
            }
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new
                {
                    issued.SecretId,
                    issued.SecretIdAccessor,
                    ExpiresAt = Printer.Time(issued.ExpiresAt),
                    issued.NumUses,
                });
                return;
            }
            ctx.Out.Fields(
                ("Secret ID", issued.SecretId),
                ("Accessor", issued.SecretIdAccessor),
                ("Expires", issued.ExpiresAt is null ? "never" : Printer.Human(issued.ExpiresAt)),
                ("Uses", issued.NumUses == 0 ? "unlimited" : issued.NumUses.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        });
        return command;
    }

    private static Command Login()
    {
        var roleId = new Argument<string>("role-id") { Description = "The role id" };
        var file = new Option<string>("--secret-id-file") { Description = "Read the secret id from this file (default: standard input)" };
        var command = new Command("login", "Log in with a role id and a secret id (from a file or standard input, never an argument); prints the token") { roleId, file };
        command.SetHandler(async (ctx, ct) =>
        {
            var secretId = (await SecretValueReader.ReadAsync(ctx.Console, ctx.Value(file), "--secret-id-file", ct)).Trim();
            var login = await ctx.Client.AppRoleLoginAsync(ctx.Value(roleId), secretId, ct);
            TokenCommands.PrintInfo(ctx.Out, login.Info, login.Token);
        });
        return command;
    }

    private static void PrintRole(Printer output, Role role)
    {
        if (output.IsJson)
        {
            output.Json(new
            {
                role.Name,
                Policies = role.Policies.ToList(),
                TokenTtlSeconds = (long?)role.TokenTtl?.ToTimeSpan().TotalSeconds,
                TokenMaxTtlSeconds = (long?)role.TokenMaxTtl?.ToTimeSpan().TotalSeconds,
                SecretIdTtlSeconds = (long?)role.SecretIdTtl?.ToTimeSpan().TotalSeconds,
                role.SecretIdNumUses,
                BoundCidrs = role.BoundCidrs.ToList(),
            });
            return;
        }
        output.Fields(
            ("Name", role.Name),
            ("Policies", string.Join(", ", role.Policies)),
            ("Token TTL", role.TokenTtl is null ? "-" : DurationParser.Format(role.TokenTtl.ToTimeSpan())),
            ("Token Max TTL", role.TokenMaxTtl is null ? "-" : DurationParser.Format(role.TokenMaxTtl.ToTimeSpan())),
            ("Secret ID TTL", role.SecretIdTtl is null ? "-" : DurationParser.Format(role.SecretIdTtl.ToTimeSpan())),
            ("Secret ID Uses", role.SecretIdNumUses == 0 ? "unlimited" : role.SecretIdNumUses.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("Bound CIDRs", role.BoundCidrs.Count == 0 ? "any" : string.Join(", ", role.BoundCidrs)));
    }
}
