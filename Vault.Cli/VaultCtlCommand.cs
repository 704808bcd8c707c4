using System.CommandLine;

namespace Vault.Cli;

/// <summary>vaultctl's root command: the global options and the console one run uses, found by every command's action through its parse result.</summary>
internal sealed class VaultCtlCommand : RootCommand
{
    public VaultCtlCommand(CliConsole console)
        : base($"vaultctl: administer a Vault server over gRPC.\n\n{ExitCodes.Help}")
    {
        Console = console;
        Global.AddTo(this);
    }

    public CliConsole Console { get; }

    public GlobalOptions Global { get; } = new();
}
