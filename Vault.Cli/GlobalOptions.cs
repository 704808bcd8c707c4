using System.CommandLine;
using Vault.Client;

namespace Vault.Cli;

/// <summary>Options every command accepts; flags override the environment.</summary>
internal static class GlobalOptions
{
    public static readonly Option<string> Address = new("--address")
    {
        Description = $"Server address (env VAULT_ADDR; default {VaultClientOptions.DefaultAddress})",
        Recursive = true,
    };

    public static readonly Option<string> Token = new("--token")
    {
        Description = "Token to authenticate with (env VAULT_TOKEN)",
        Recursive = true,
    };

    public static readonly Option<string> CaCert = new("--ca-cert")
    {
        Description = "PEM file of the CA that signed the server's TLS certificate (env VAULT_CACERT)",
        Recursive = true,
    };

    public static readonly Option<bool> Json = new("--json")
    {
        Description = "Print machine-readable JSON",
        Recursive = true,
    };

    public static void AddTo(RootCommand root)
    {
        root.Options.Add(Address);
        root.Options.Add(Token);
        root.Options.Add(CaCert);
        root.Options.Add(Json);
    }

    /// <summary>Client options: flags first, then VAULT_ADDR / VAULT_TOKEN / VAULT_CACERT.</summary>
    public static VaultClientOptions ClientOptions(ParseResult parse)
    {
        var options = VaultClientOptions.FromEnvironment();
        if (parse.GetValue(Address) is { Length: > 0 } address)
        {
            options.Address = address;
        }
        if (parse.GetValue(Token) is { Length: > 0 } token)
        {
            options.Token = token;
        }
        if (parse.GetValue(CaCert) is { Length: > 0 } caCert)
        {
            options.CaCertificateFile = caCert;
        }
        return options;
    }
}
