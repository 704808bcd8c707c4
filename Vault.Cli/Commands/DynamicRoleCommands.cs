using System.CommandLine;
using Google.Protobuf.WellKnownTypes;
using Vault.Cli.Input;
using Vault.Cli.Output;
using Vault.Protocol.V1;

namespace Vault.Cli.Commands;

/// <summary><c>vaultctl role write|read|list|delete</c>: dynamic database roles (not AppRole: that is <c>vaultctl approle</c>).</summary>
internal static class DynamicRoleCommands
{
    public static Command Build()
    {
        var command = new Command("role",
            "Dynamic database roles: how 'lease checkout' makes short-lived users on a rotation target (for machine login roles, see 'approle')");
        command.Subcommands.Add(Write());
        command.Subcommands.Add(Read());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Delete());
        return command;
    }

    private static Argument<string> NameArgument() => new("name") { Description = "Dynamic role name (letters, digits, '-', '_', '.')" };

    private static Command Write()
    {
        var name = NameArgument();
        var target = new Option<string>("--target") { Description = "Rotation target (postgres or mysql) whose connection and admin credential make the users", Required = true };
        var statements = new Option<string[]>("--statement")
        {
            Description = "SQL run after the user is created, in order (repeatable); {{name}} is replaced by the quoted user name, e.g. 'GRANT SELECT ON ALL TABLES IN SCHEMA public TO {{name}}'",
        };
        var statementFile = new Option<string>("--statement-file")
        {
            Description = "Read more statements from this file, run after the --statement ones; each ends with ';' at the end of a line",
        };
        var defaultTtl = new Option<string>("--default-ttl") { Description = "Lifetime of a lease when checkout gives no --ttl, e.g. 1h (default 1h)" };
        var maxTtl = new Option<string>("--max-ttl") { Description = "Limit a lease cannot be renewed past, counted from checkout, e.g. 24h (default 24h)" };
        var command = new Command("write", "Create or replace a dynamic database role (not an AppRole: see 'approle write')")
        {
            name, target, statements, statementFile, defaultTtl, maxTtl,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            var role = new DynamicRole { Name = ctx.Value(name), Target = ctx.Value(target) };
            (role.DefaultTtl, role.MaxTtl) = DurationParser.TtlPair(ctx.Value(defaultTtl), ctx.Value(maxTtl));
            role.CreationStatements.AddRange(StatementInput.Read(ctx.Value(statements) ?? [], ctx.Value(statementFile)));
            LeasePrinter.Print(ctx.Out, await ctx.Client.PutDynamicRoleAsync(role, ct));
        });
        return command;
    }

    private static Command Read()
    {
        var name = NameArgument();
        var command = new Command("read", "Show a dynamic database role") { name };
        command.SetHandler(async (ctx, ct) => LeasePrinter.Print(ctx.Out, await ctx.Client.GetDynamicRoleAsync(ctx.Value(name), ct)));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List dynamic database roles");
        command.SetHandler(async (ctx, ct) => ctx.Out.Names("names", await ctx.Client.ListDynamicRolesAsync(ct)));
        return command;
    }

    private static Command Delete()
    {
        var name = NameArgument();
        var command = new Command("delete", "Delete a dynamic database role (refused while it has live leases)") { name };
        command.SetHandler(async (ctx, ct) =>
        {
            await ctx.Client.DeleteDynamicRoleAsync(ctx.Value(name), ct);
            ctx.Out.Deleted("Role", ctx.Value(name));
        });
        return command;
    }
}
