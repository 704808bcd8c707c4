using System.CommandLine;
using Vault.Cli.Output;
using Vault.Client;

namespace Vault.Cli;

/// <summary>What one command invocation works with: its parse result, output and (lazily) a client.</summary>
internal sealed class CommandContext : IDisposable
{
    private readonly VaultCtlCommand _root;
    private VaultClient? _client;

    public CommandContext(ParseResult parse)
    {
        Parse = parse;
        _root = (VaultCtlCommand)parse.RootCommandResult.Command;
        Out = new Printer(_root.Console.Out, parse.GetValue(_root.Global.Json));
    }

    public ParseResult Parse { get; }

    /// <summary>Standard input, output, error and the environment of this run.</summary>
    public CliConsole Console => _root.Console;

    public Printer Out { get; }

    /// <summary>The server address, for error messages (set once the client exists).</summary>
    public string? Address => _client is null ? null : string.Join(", ", _client.Addresses.Select(a => a.ToString().TrimEnd('/')));

    /// <summary>The CA certificate file in use, for error messages (set once the client exists).</summary>
    public string? CaCertificateFile { get; private set; }

    /// <summary>How long each call may wait for the server, for error messages (set once the client exists).</summary>
    public TimeSpan? Timeout { get; private set; }

    /// <exception cref="UsageException">The address or CA certificate file is unusable.</exception>
    public VaultClient Client
    {
        get
        {
            if (_client is null)
            {
                try
                {
                    var options = _root.Global.ClientOptions(Parse, Console);
                    _client = new VaultClient(options);
                    CaCertificateFile = options.CaCertificateFile;
                    Timeout = options.Timeout;
                }
                catch (ArgumentException ex)
                {
                    throw new UsageException(ex.Message);
                }
            }
            return _client;
        }
    }

    /// <summary>
    /// One client per address given (several nodes): for what must be asked of each node itself,
    /// such as its own audit chain. The caller disposes them.
    /// </summary>
    public IReadOnlyList<(Uri Address, VaultClient Client)> ClientPerNode()
    {
        var options = _root.Global.ClientOptions(Parse, Console);
        return [.. Client.Addresses.Select(address => (address, new VaultClient(new VaultClientOptions
        {
            Address = address.ToString().TrimEnd('/'),
            Token = options.Token,
            RoleId = options.RoleId,
            SecretId = options.SecretId,
            CaCertificateFile = options.CaCertificateFile,
            Timeout = options.Timeout,
            ConnectTimeout = options.ConnectTimeout,
        })))];
    }

    public T Value<T>(Option<T> option) => Parse.GetValue(option)!;

    public T Value<T>(Argument<T> argument) => Parse.GetValue(argument)!;

    public void Dispose() => _client?.Dispose();
}
