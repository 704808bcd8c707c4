using System.CommandLine;
using Google.Protobuf.WellKnownTypes;
using Vault.Cli.Input;
using Vault.Cli.Output;
using Vault.Protocol.V1;

namespace Vault.Cli.Commands;

/// <summary><c>vaultctl set write|read|list|delete</c>: check-out sets, accounts lent one holder at a time by <c>lease checkout --set</c>.</summary>
internal static class SetCommands
{
    public static Command Build()
    {
        var command = new Command("set",
            "Check-out sets: rotation targets lent one holder at a time by 'lease checkout --set'; check-in ('lease revoke') rotates the password");
        command.Subcommands.Add(Write());
        command.Subcommands.Add(Read());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Delete());
        return command;
    }

    private static Argument<string> NameArgument() => new("name") { Description = "Check-out set name (letters, digits, '-', '_', '.')" };

    private static Command Write()
    {
        var name = NameArgument();
        var targets = new Option<string[]>("--target")
        {
            Description = "Rotation target whose account the set lends (repeatable); a single-user target with no schedule, since each check-in rotates it",
            Required = true,
        };
        var defaultTtl = new Option<string>("--default-ttl") { Description = "Lifetime of a check-out when it gives no --ttl, e.g. 1h (default 1h)" };
        var maxTtl = new Option<string>("--max-ttl") { Description = "Limit a check-out cannot be renewed past, counted from checkout, e.g. 24h (default 24h)" };
        var command = new Command("write", "Create or replace a check-out set") { name, targets, defaultTtl, maxTtl };
        command.SetHandler(async (ctx, ct) =>
        {
            var set = new CheckoutSet { Name = ctx.Value(name) };
            (set.DefaultTtl, set.MaxTtl) = DurationParser.TtlPair(ctx.Value(defaultTtl), ctx.Value(maxTtl));
            set.Targets.AddRange(Targets(ctx.Value(targets) ?? []));
            LeasePrinter.Print(ctx.Out, await ctx.Client.PutCheckoutSetAsync(set, ct));
        });
        return command;
    }

    private static Command Read()
    {
        var name = NameArgument();
        var command = new Command("read", "Show a check-out set: its TTLs and each target, lent or free") { name };
        command.SetHandler(async (ctx, ct) => LeasePrinter.Print(ctx.Out, await ctx.Client.GetCheckoutSetAsync(ctx.Value(name), ct)));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List check-out sets");
        command.SetHandler(async (ctx, ct) => ctx.Out.Names("names", await ctx.Client.ListCheckoutSetsAsync(ct)));
        return command;
    }

    private static Command Delete()
    {
        var name = NameArgument();
        var command = new Command("delete", "Delete a check-out set (refused while an account of it is lent); its targets stay") { name };
        command.SetHandler(async (ctx, ct) =>
        {
            await ctx.Client.DeleteCheckoutSetAsync(ctx.Value(name), ct);
            ctx.Out.Deleted("Set", ctx.Value(name));
        });
        return command;
    }

    /// <exception cref="UsageException">A target is empty or given twice.</exception>
    private static IEnumerable<string> Targets(string[] names)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var target in names)
        {
            if (string.IsNullOrWhiteSpace(target))
            {
                throw new UsageException("--target: the target name is empty");
            }
            if (!seen.Add(target))
            {
                throw new UsageException($"--target: '{target}' is given twice");
            }
        }
        return names;
    }
}
