using System.CommandLine;
using Vault.Cli.Output;
using Vault.Client;

namespace Vault.Cli;

/// <summary>What one command invocation works with: its parse result, output and (lazily) a client.</summary>
internal sealed class CommandContext(ParseResult parse) : IDisposable
{
    private VaultClient? _client;

    public ParseResult Parse { get; } = parse;

    public Printer Out { get; } = new(Console.Out, parse.GetValue(GlobalOptions.Json));

    /// <summary>The server address, for error messages (set once the client exists).</summary>
    public string? Address => _client?.Address.ToString().TrimEnd('/');

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
                    var options = GlobalOptions.ClientOptions(Parse);
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

    public T Value<T>(Option<T> option) => Parse.GetValue(option)!;

    public T Value<T>(Argument<T> argument) => Parse.GetValue(argument)!;

    public void Dispose() => _client?.Dispose();
}
