using System.CommandLine;
using System.Net.Sockets;
using System.Security.Authentication;
using Grpc.Core;
using Vault.Cli.Commands;
using Vault.Cli.Input;

namespace Vault.Cli;

/// <summary>Builds the command tree, runs one command and turns every failure into one line on stderr and an exit code.</summary>
internal static class CliApp
{
    /// <summary>Runs vaultctl as a process: the process's streams and environment, Ctrl+C cancels the command.</summary>
    public static Task<int> RunAsync(string[] args) =>
        // System.CommandLine 2.0.0 ships with no termination timeout (dotnet/command-line-api#2739),
        // which leaves SIGINT/SIGTERM unhandled: the process died at once, the action's token was never
        // cancelled and 'audit tail --follow' could not stop cleanly. Set it, so Ctrl+C cancels the token.
        RunAsync(args, CliConsole.Process(), TimeSpan.FromSeconds(2), CancellationToken.None);

    /// <summary>
    /// Runs one vaultctl command with <paramref name="console"/>'s streams and environment. With no
    /// <paramref name="processTerminationTimeout"/> it leaves the process's signals alone, so it can
    /// run inside another program (the tests) and be stopped with <paramref name="cancellationToken"/>.
    /// </summary>
    /// <returns>The exit code (<see cref="ExitCodes"/>).</returns>
    internal static async Task<int> RunAsync(string[] args, CliConsole console, TimeSpan? processTerminationTimeout, CancellationToken cancellationToken)
    {
        var root = new VaultCtlCommand(console);
        root.Subcommands.Add(OperatorCommands.Build());
        root.Subcommands.Add(KvCommands.Build());
        root.Subcommands.Add(TokenCommands.Build());
        root.Subcommands.Add(PolicyCommands.Build());
        root.Subcommands.Add(AppRoleCommands.Build());
        root.Subcommands.Add(IdentityCommands.Login());
        root.Subcommands.Add(IdentityCommands.Userpass());
        root.Subcommands.Add(IdentityCommands.Ldap());
        root.Subcommands.Add(IdentityCommands.Identity());
        root.Subcommands.Add(IdentityCommands.Mfa());
        root.Subcommands.Add(AccessCommands.Grants());
        root.Subcommands.Add(AccessCommands.Requests());
        root.Subcommands.Add(TargetCommands.Build());
        root.Subcommands.Add(DynamicRoleCommands.Build());
        root.Subcommands.Add(SetCommands.Build());
        root.Subcommands.Add(LeaseCommands.Build());
        root.Subcommands.Add(AuditCommands.Build());
        root.Subcommands.Add(ReportCommands.Build());
        root.Subcommands.Add(EventCommands.Build());

        // Response files (@file) are off: '@' has its own meaning in KEY=@FILE values.
        var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parse.Errors.Count > 0)
        {
            // An unrecognised word explains more than the "required command" error it also causes.
            var error = parse.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? parse.Errors[0];
            await console.Error.WriteLineAsync($"vaultctl: {OneLine(error.Message)} (see '{CommandPath(parse)} --help')");
            return ExitCodes.Usage;
        }
        return await parse.InvokeAsync(new InvocationConfiguration
        {
            EnableDefaultExceptionHandler = false,
            ProcessTerminationTimeout = processTerminationTimeout,
            Output = console.Out,
            Error = console.Error,
        }, cancellationToken);
    }

    /// <summary>Sets <paramref name="command"/>'s action: runs <paramref name="handler"/> and maps its failures.</summary>
    public static void SetHandler(this Command command, Func<CommandContext, CancellationToken, Task> handler) =>
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var context = new CommandContext(parse);
            try
            {
                await handler(context, cancellationToken);
                return ExitCodes.Success;
            }
            catch (Exception ex)
            {
                var (code, message) = Describe(ex, context);
                await context.Console.Error.WriteLineAsync($"vaultctl: {OneLine(message)}");
                return code;
            }
        });

    private static (int Code, string Message) Describe(Exception ex, CommandContext context) => ex switch
    {
        UsageException => (ExitCodes.Usage, ex.Message),
        VerificationFailedException => (ExitCodes.VerificationFailed, ex.Message),
        RotationFailedException => (ExitCodes.ServerError, ex.Message),
        PruneIncompleteException => (ExitCodes.ServerError, ex.Message),
        RpcException { StatusCode: StatusCode.Cancelled } or OperationCanceledException => (ExitCodes.Cancelled, "cancelled"),
        // The server never sends DEADLINE_EXCEEDED: this is the client's own deadline running out.
        RpcException { StatusCode: StatusCode.DeadlineExceeded } =>
            (ExitCodes.ConnectionFailed, $"{context.Address} did not answer within {DurationParser.Format(context.Timeout ?? TimeSpan.Zero)} (wait longer with --timeout or {GlobalOptions.TimeoutVariable})"),
        // A transport failure carries the client-side exception; a status the server sent does not.
        RpcException { Status.DebugException: { } cause } =>
            (ExitCodes.ConnectionFailed, $"cannot connect to {context.Address}: {ConnectionFailure(cause, context.Address, context.CaCertificateFile)}"),
        RpcException rpc => (ExitCodes.ServerError, $"{rpc.StatusCode}: {rpc.Status.Detail}"),
        IOException or UnauthorizedAccessException => (ExitCodes.Usage, ex.Message),
        _ => (ExitCodes.Usage, $"unexpected error ({ex.GetType().Name}): {ex.Message}"),
    };

    /// <summary>The most telling reason in a transport failure chain, in words a user can act on.</summary>
    private static string ConnectionFailure(Exception cause, string? address, string? caCertificateFile)
    {
        for (var e = cause; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case AuthenticationException when caCertificateFile is not null:
                    return $"TLS handshake failed: the server's certificate does not chain to a CA in '{caCertificateFile}' or does not name the host in the address";
                case AuthenticationException auth:
                    return $"TLS handshake failed: {auth.Message} (to trust a private CA, set VAULT_CACERT or --ca-cert)";
                case SocketException socket:
                    return socket.Message;
            }
        }
        var innermost = cause;
        while (innermost.InnerException is not null)
        {
            innermost = innermost.InnerException;
        }
        return address?.StartsWith("http://", StringComparison.Ordinal) == true
            ? $"{innermost.Message} (if the server uses TLS, use an https:// address)"
            : innermost.Message;
    }

    private static string CommandPath(ParseResult parse)
    {
        var names = new List<string>();
        for (var result = parse.CommandResult; result is not null; result = result.Parent as System.CommandLine.Parsing.CommandResult)
        {
            names.Insert(0, result.Command is RootCommand ? "vaultctl" : result.Command.Name);
        }
        return string.Join(' ', names);
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();
}
