using System.CommandLine;
using Vault.Cli.Input;
using Vault.Cli.Output;
using Vault.Protocol.V1;

namespace Vault.Cli.Commands;

/// <summary><c>vaultctl lease checkout|renew|revoke|lookup|list</c>: short-lived database credentials and borrowed accounts under leases.</summary>
internal static class LeaseCommands
{
    public static Command Build()
    {
        var command = new Command("lease", "Short-lived database users from dynamic roles ('role') and accounts borrowed from check-out sets ('set'), each under a lease");
        command.Subcommands.Add(Checkout());
        command.Subcommands.Add(Renew());
        command.Subcommands.Add(Revoke());
        command.Subcommands.Add(Lookup());
        command.Subcommands.Add(List());
        return command;
    }

    private static Argument<string> LeaseIdArgument() => new("lease-id") { Description = "Lease id, dynamic/<role>/<random> (or checkout/<set>/<random>)" };

    private static Command Checkout()
    {
        var role = new Argument<string>("role") { Description = "Dynamic role to make the user for (or give --set)", Arity = ArgumentArity.ZeroOrOne };
        var set = new Option<string>("--set") { Description = "Borrow a free account of this check-out set instead: one holder at a time, its password rotated at check-in" };
        var ttl = new Option<string>("--ttl") { Description = "Lifetime of the lease, e.g. 15m (default: the role's or set's default TTL; at most its max TTL)" };
        var wait = new Option<string>("--wait") { Description = "With --set: how long to wait for an account when none is free, e.g. 30s (default: fail at once; at most 10m)" };
        var command = new Command("checkout",
            "Make a fresh database user for a dynamic role, or borrow an account of a check-out set (--set), under a new lease held by the calling token; prints the lease id, username and password (shown once)")
        {
            role, set, ttl, wait,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            var roleName = ctx.Parse.GetValue(role);
            var setName = ctx.Parse.GetValue(set);
            var waitText = ctx.Parse.GetValue(wait);
            switch (roleName, setName)
            {
                case (not null, not null):
                    throw new UsageException("a role and --set: give one of the two");
                case (null, null):
                    throw new UsageException("give a dynamic role, or --set to borrow an account of a check-out set");
                case (not null, null) when waitText is not null:
                    // Making a user never queues: only a set's accounts run out.
                    throw new UsageException("--wait applies only to --set");
            }
            TimeSpan? lifetime = ctx.Value(ttl) is { } text ? DurationParser.Parse(text, "--ttl") : null;
            TimeSpan? patience = waitText is null ? null : DurationParser.Parse(waitText, "--wait");
            LeasePrinter.Print(ctx.Out, setName is null
                ? await ctx.Client.IssueCredentialAsync(roleName!, lifetime, ct)
                : await ctx.Client.BorrowAccountAsync(setName, lifetime, patience, ct));
        });
        return command;
    }

    private static Command Renew()
    {
        var leaseId = LeaseIdArgument();
        var increment = new Option<string>("--increment") { Description = "New remaining lifetime, counted from now, e.g. 30m (default: the role's default TTL); never past the lease's max TTL" };
        var command = new Command("renew", "Extend a lease") { leaseId, increment };
        command.SetHandler(async (ctx, ct) =>
        {
            TimeSpan? by = ctx.Value(increment) is { } text ? DurationParser.Parse(text, "--increment") : null;
            LeasePrinter.Print(ctx.Out, await ctx.Client.RenewLeaseAsync(ctx.Value(leaseId), by, ct));
        });
        return command;
    }

    private static Command Revoke()
    {
        var leaseId = new Argument<string>("lease-id") { Description = "Lease id to revoke (or give --prefix)", Arity = ArgumentArity.ZeroOrOne };
        var prefix = new Option<string>("--prefix") { Description = "Revoke every lease whose id starts with this, e.g. dynamic/reports/ (instead of a lease id)" };
        var command = new Command("revoke", "End a lease now, or every lease under --prefix: dynamic users are dropped and their sessions ended; a borrowed account is checked in (its password rotated)") { leaseId, prefix };
        command.SetHandler(async (ctx, ct) =>
        {
            var id = ctx.Parse.GetValue(leaseId);
            var under = ctx.Parse.GetValue(prefix);
            switch (id, under)
            {
                case (not null, not null):
                    throw new UsageException("a lease id and --prefix: give one of the two");
                case (null, null):
                    throw new UsageException("give a lease id, or --prefix to revoke every lease under it");
                case (null, { Length: 0 }):
                    // The server reads an empty prefix as every lease: ending them all takes a deliberate prefix.
                    throw new UsageException("--prefix: the prefix is empty, which would revoke every lease (give e.g. dynamic/ for every dynamic credential)");
                case (null, not null):
                    var count = await ctx.Client.RevokeLeasePrefixAsync(under, ct);
                    if (ctx.Out.IsJson)
                    {
                        ctx.Out.Json(new { Prefix = under, Revoked = count });
                        return;
                    }
                    ctx.Out.Line($"Revoked {count} lease{(count == 1 ? "" : "s")} under '{under}'");
                    return;
                case (not null, null):
                    var lease = await ctx.Client.RevokeLeaseAsync(id, ct);
                    if (ctx.Out.IsJson)
                    {
                        ctx.Out.Json(LeasePrinter.Json(lease));
                        return;
                    }
                    // A dynamic credential's user is dropped; a checked-out account is rotated (the holder's password dies) and goes back to its set.
                    var ending = LeasePrinter.IsCheckout(lease)
                        ? (Done: $"account {lease.Username} checked in: its password was rotated and it is back in set '{lease.Role}'",
                            Pending: $"rotating account {lease.Username} before it goes back to set '{lease.Role}'")
                        : (Done: $"user {lease.Username} dropped", Pending: $"dropping user {lease.Username}");
                    ctx.Out.Line(lease.State switch
                    {
                        LeaseState.Revoked => $"Lease '{lease.Id}' revoked; {ending.Done}",
                        LeaseState.Revoking => $"Lease '{lease.Id}' revoked; {ending.Pending} is retried in the background"
                            + (lease.LastError.Length == 0 ? "" : $" (last error: {lease.LastError})"),
                        _ => $"Lease '{lease.Id}' revoked; state {TargetPrinter.Name(lease.State)}",
                    });
                    return;
            }
        });
        return command;
    }

    private static Command Lookup()
    {
        var leaseId = LeaseIdArgument();
        var command = new Command("lookup", "Show a lease: role, username, state, expiry (never the password)") { leaseId };
        command.SetHandler(async (ctx, ct) => LeasePrinter.Print(ctx.Out, await ctx.Client.LookupLeaseAsync(ctx.Value(leaseId), ct)));
        return command;
    }

    private static Command List()
    {
        var prefix = new Argument<string>("prefix") { Description = "List only leases whose id starts with this, e.g. dynamic/reports/ (default: all)", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => "" };
        var command = new Command("list", "List leases: ID ROLE USERNAME STATE EXPIRES TOKEN") { prefix };
        command.SetHandler(async (ctx, ct) =>
        {
            var leases = await ctx.Client.ListLeasesAsync(ctx.Value(prefix), ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { Leases = leases.Select(LeasePrinter.Json).ToList() });
                return;
            }
            ctx.Out.Table(LeasePrinter.ListHeaders, leases.Select(LeasePrinter.ListRow).ToList());
        });
        return command;
    }
}
