using System.CommandLine;
using Vault.Cli.Input;
using Vault.Client;

namespace Vault.Cli;

/// <summary>
/// Options every command accepts; flags override the environment. One set per command tree: an
/// option records the commands it was added to, so trees built side by side (the tests run many
/// vaultctl invocations in one process) must not share them.
/// </summary>
internal sealed class GlobalOptions
{
    public Option<string> Address { get; } = new("--address")
    {
        Description = $"Server address (env VAULT_ADDR; default {VaultClientOptions.DefaultAddress})",
        Recursive = true,
    };

    public Option<string> Token { get; } = new("--token")
    {
        Description = "Token to authenticate with (env VAULT_TOKEN; else the one 'vaultctl login' stored in ~/.vault-token)",
        Recursive = true,
    };

    public Option<string> CaCert { get; } = new("--ca-cert")
    {
        Description = "PEM file of the CA that signed the server's TLS certificate (env VAULT_CACERT)",
        Recursive = true,
    };

    /// <summary>What <c>--timeout</c> and <c>VAULT_CLIENT_TIMEOUT</c> default to, as HashiCorp's <c>vault</c> does.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    public const string TimeoutVariable = "VAULT_CLIENT_TIMEOUT";

    public Option<string> Timeout { get; } = new("--timeout")
    {
        Description = $"How long to wait for each answer from the server, e.g. 30s, 2m or plain seconds (env {TimeoutVariable}; default 60s)",
        Recursive = true,
    };

    public Option<bool> Json { get; } = new("--json")
    {
        Description = "Print machine-readable JSON",
        Recursive = true,
    };

    public void AddTo(RootCommand root)
    {
        root.Options.Add(Address);
        root.Options.Add(Token);
        root.Options.Add(CaCert);
        root.Options.Add(Timeout);
        root.Options.Add(Json);
    }

    /// <summary>Client options: flags first, then VAULT_ADDR / VAULT_TOKEN / VAULT_CACERT / VAULT_CLIENT_TIMEOUT, then the token file of <c>vaultctl login</c>.</summary>
    /// <exception cref="UsageException">The timeout is not a positive duration.</exception>
    public VaultClientOptions ClientOptions(ParseResult parse, CliConsole console)
    {
        var options = VaultClientOptions.FromEnvironment(console.GetEnvironmentVariable);
        options.Timeout = parse.GetValue(Timeout) is { } timeout
            ? DurationParser.Parse(timeout, "--timeout")
            : console.GetEnvironmentVariable(TimeoutVariable) is { Length: > 0 } fromEnvironment
                ? DurationParser.Parse(fromEnvironment, TimeoutVariable)
                : DefaultTimeout;
        if (parse.GetValue(Address) is { Length: > 0 } address)
        {
            options.Address = address;
        }
        if (parse.GetValue(Token) is { Length: > 0 } token)
        {
            options.Token = token;
        }
        else if (string.IsNullOrEmpty(options.Token) && TokenFile.Read(console) is { } stored)
        {
            options.Token = stored;
        }
        if (parse.GetValue(CaCert) is { Length: > 0 } caCert)
        {
            options.CaCertificateFile = caCert;
        }
        return options;
    }
}
