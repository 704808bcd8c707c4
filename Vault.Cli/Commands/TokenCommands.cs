using System.CommandLine;
using Google.Protobuf.WellKnownTypes;
using Vault.Cli.Input;
using Vault.Cli.Output;
using Vault.Protocol.V1;

namespace Vault.Cli.Commands;

/// <summary><c>vaultctl token create|lookup|renew|revoke</c>.</summary>
internal static class TokenCommands
{

    public static Command Build()
    {
        var command = new Command("token", "Create, inspect, renew and revoke tokens");
        command.Subcommands.Add(Create());
        command.Subcommands.Add(Lookup());
        command.Subcommands.Add(Renew());
        command.Subcommands.Add(Revoke());
        return command;
    }

    private static Option<string> Accessor(string verb) => new("--accessor") { Description = $"{verb} the token with this accessor instead of the calling token" };

    private static Command Create()
    {
        var policies = new Option<string[]>("--policy") { Description = "Policy to attach (repeatable; default: the caller's policies)" };
        var ttl = new Option<string>("--ttl") { Description = "Lifetime before renewal is needed, e.g. 30m, 1h (default 1h)" };
        var maxTtl = new Option<string>("--max-ttl") { Description = "Lifetime renewals cannot extend past, e.g. 24h (default 24h)" };
        var displayName = new Option<string>("--display-name") { Description = "A name for people and the audit log" };
        var orphan = new Option<bool>("--orphan") { Description = "Create a token with no parent (needs root)" };
        var command = new Command("create", "Create a child of the calling token (prints the new token, shown once)") { policies, ttl, maxTtl, displayName, orphan };
        command.SetHandler(async (ctx, ct) =>
        {
            var request = new CreateTokenRequest { DisplayName = ctx.Value(displayName) ?? "", Orphan = ctx.Value(orphan) };
            request.Policies.AddRange(ctx.Value(policies) ?? []);
            // Unset durations take the server's defaults (1h, and max(ttl, 24h)).
            if (ctx.Value(ttl) is { } ttlText)
            {
                request.Ttl = Duration.FromTimeSpan(DurationParser.Parse(ttlText, "--ttl"));
            }
            if (ctx.Value(maxTtl) is { } maxTtlText)
            {
                request.MaxTtl = Duration.FromTimeSpan(DurationParser.Parse(maxTtlText, "--max-ttl"));
            }
            var created = await ctx.Client.CreateTokenAsync(request, ct);
            PrintInfo(ctx.Out, created.Info, created.Token);
        });
        return command;
    }

    private static Command Lookup()
    {
        var accessor = Accessor("Look up");
        var command = new Command("lookup", "Show a token's policies and lifetime (never the token itself)") { accessor };
        command.SetHandler(async (ctx, ct) => PrintInfo(ctx.Out, await ctx.Client.LookupTokenAsync(ctx.Value(accessor), ct), token: null));
        return command;
    }

    private static Command Renew()
    {
        var accessor = Accessor("Renew");
        var increment = new Option<string>("--increment") { Description = "New remaining lifetime, e.g. 1h (default: the token's TTL); never past its max TTL" };
        var command = new Command("renew", "Extend a token's lifetime") { accessor, increment };
        command.SetHandler(async (ctx, ct) =>
        {
            // Unset: the server extends by the token's own TTL.
            TimeSpan? by = ctx.Value(increment) is { } text ? DurationParser.Parse(text, "--increment") : null;
            PrintInfo(ctx.Out, await ctx.Client.RenewTokenAsync(ctx.Value(accessor), by, ct), token: null);
        });
        return command;
    }

    private static Command Revoke()
    {
        var accessor = Accessor("Revoke");
        var command = new Command("revoke", "Revoke a token and all its children") { accessor };
        command.SetHandler(async (ctx, ct) =>
        {
            var revoked = await ctx.Client.RevokeTokenAsync(ctx.Value(accessor), ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { Revoked = revoked });
                return;
            }
            ctx.Out.Line($"Revoked {revoked} token{(revoked == 1 ? "" : "s")}");
        });
        return command;
    }

    internal static void PrintInfo(Printer output, TokenInfo info, string? token)
    {
        var ttl = info.Ttl?.ToTimeSpan();
        if (output.IsJson)
        {
            output.Json(new
            {
                Token = token,
                info.Accessor,
                Policies = info.Policies.ToList(),
                info.DisplayName,
                CreatedAt = Printer.Time(info.CreatedAt),
                ExpiresAt = Printer.Time(info.ExpiresAt),
                MaxExpiresAt = Printer.Time(info.MaxExpiresAt),
                TtlSeconds = ttl is { } t ? (long?)t.TotalSeconds : null,
                ParentAccessor = info.ParentAccessor.Length == 0 ? null : info.ParentAccessor,
                Entity = info.Entity.Length == 0 ? null : info.Entity,
            });
            return;
        }
        var fields = new List<(string, string)>();
        if (token is not null)
        {
            fields.Add(("Token", token));
        }
        fields.Add(("Accessor", info.Accessor));
        fields.Add(("Policies", info.Policies.Count == 0 ? "-" : string.Join(", ", info.Policies)));
        fields.Add(("Display Name", info.DisplayName.Length == 0 ? "-" : info.DisplayName));
        fields.Add(("Created", Printer.Human(info.CreatedAt)));
        fields.Add(("Expires", info.ExpiresAt is null ? "never" : Printer.Human(info.ExpiresAt)));
        fields.Add(("Max Expires", info.MaxExpiresAt is null ? "never" : Printer.Human(info.MaxExpiresAt)));
        fields.Add(("TTL", ttl is { } value && value > TimeSpan.Zero ? DurationParser.Format(value) : "-"));
        fields.Add(("Parent Accessor", info.ParentAccessor.Length == 0 ? "-" : info.ParentAccessor));
        fields.Add(("Entity", info.Entity.Length == 0 ? "-" : info.Entity));
        output.Fields([.. fields]);
    }
}
