using System.Net;
using System.Net.Sockets;

namespace Vault.Tests.Cli;

/// <summary>Failures that happen before or instead of a server answer.</summary>
public sealed class CliErrorTests
{
    [Fact]
    public async Task UnknownCommand_IsOneLineUsageError()
    {
        var result = await new VaultCtl("http://127.0.0.1:1").RunAsync("kv", "frobnicate");

        result.OneLineError(1, "frobnicate");
    }

    [Fact]
    public async Task MissingArgument_IsOneLineUsageErrorPointingAtHelp()
    {
        var result = await new VaultCtl("http://127.0.0.1:1").RunAsync("kv", "get");

        result.OneLineError(1, "vaultctl kv get --help");
    }

    [Fact]
    public async Task BadVersionList_IsOneLineUsageError()
    {
        var result = await new VaultCtl("http://127.0.0.1:1").RunAsync("kv", "destroy", "cli/x", "--versions", "1,two");

        result.OneLineError(1, "--versions: 'two' is not a version number");
    }

    [Fact]
    public async Task UnreachableServer_IsOneLineConnectionError()
    {
        var address = $"http://127.0.0.1:{UnusedPort()}";

        var result = await new VaultCtl(address).RunAsync("operator", "status");

        result.OneLineError(3, $"cannot connect to {address}: Connection refused");
    }

    [Fact]
    public async Task AddressFlag_OverridesVaultAddr()
    {
        var result = await new VaultCtl("http://127.0.0.1:1").RunAsync("operator", "status", "--address", "not-a-url");

        result.OneLineError(1, "address 'not-a-url' is not an absolute http:// or https:// URL");
    }

    [Fact]
    public async Task Help_ListsCommandsAndExitCodes()
    {
        var result = await new VaultCtl("http://127.0.0.1:1").RunAsync("--help");

        var help = result.Ok();
        foreach (var command in new[] { "operator", "kv", "token", "policy", "audit" })
        {
            Assert.Contains(command, help, StringComparison.Ordinal);
        }
        Assert.Contains("Exit codes", help, StringComparison.Ordinal);
        Assert.Contains("4 'audit verify'", help.ReplaceLineEndings(" "), StringComparison.Ordinal);
    }

    private static int UnusedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
