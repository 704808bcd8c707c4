using System.CommandLine;
using Grpc.Core;
using Vault.Cli.Output;

namespace Vault.Cli.Commands;

/// <summary><c>vaultctl events watch</c>: the vault's security events as they happen.</summary>
internal static class EventCommands
{
    public static Command Build()
    {
        var command = new Command("events", "Security events: rotations, leases, audit failures, seal, break-glass (needs read on sys/events)");
        command.Subcommands.Add(Watch());
        return command;
    }

    private static Command Watch()
    {
        var type = new Option<string>("--type") { Description = "Only events whose type starts with this, e.g. rotation. or seal.sealed" };
        var after = new Option<string>("--after") { Description = "First print the events the server still holds after this event id (the last one seen)" };
        var command = new Command("watch", "Print security events as they happen until Ctrl+C (exit 0); with --json one JSON object per line") { type, after };
        command.SetHandler(async (ctx, ct) =>
        {
            try
            {
                await foreach (var item in ctx.Client.WatchEventsAsync(ctx.Value(type), ctx.Value(after), ct))
                {
                    if (item.Event is { } e)
                    {
                        Print(ctx.Out, e);
                    }
                    else if (item.Missed)
                    {
                        await ctx.Console.Error.WriteLineAsync($"vaultctl: the server no longer holds event {ctx.Value(after)}: some events before this point were not shown");
                    }
                }
            }
            catch (Exception ex) when (ct.IsCancellationRequested && ex is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
            {
                // Ctrl+C is how a watch ends, so it ends as a success.
            }
        });
        return command;
    }

    private static void Print(Printer output, Protocol.V1.SecurityEvent e)
    {
        if (output.IsJson)
        {
            output.JsonLine(new { e.Id, e.Type, Time = Printer.Time(e.Time), Attributes = Printer.Sorted(e.Attributes) });
            return;
        }
        var attributes = string.Join(' ', Printer.Sorted(e.Attributes).Select(a => $"{a.Key}={Quoted(a.Value)}"));
        output.Line($"{Printer.Human(e.Time)}  {e.Type,-26} {e.Id}  {attributes}".TrimEnd());
    }

    private static string Quoted(string value) =>
        value.Length > 0 && !value.Any(c => char.IsWhiteSpace(c) || c == '"') ? value : $"\"{value.Replace("\"", "\\\"", StringComparison.Ordinal)}\"";
}
