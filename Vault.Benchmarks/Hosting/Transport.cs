using Grpc.Net.Client;

namespace Vault.Benchmarks.Hosting;

/// <summary>How clients reach the servers of one sweep block: plaintext HTTP/2 (h2c) or HTTP/2 over TLS.</summary>
internal sealed record Transport(string Name, TlsFiles? Tls)
{
    public const string Plaintext = "plaintext";
    public const string TlsName = "tls";

    /// <summary>The server command-line arguments that select this transport.</summary>
    public IReadOnlyList<string> ServerArgs => Tls is null ? [] : ["--tls", Tls.CertFile, Tls.KeyFile];

    /// <summary>
    /// A channel as an application would hold one: all clients of a row share it. Several HTTP/2
    /// connections are allowed so that more clients than the server's stream limit (Kestrel: 100
    /// per connection) queue on a new connection instead of waiting for a stream. Over TLS the
    /// client trusts exactly the run's certificate.
    /// </summary>
    public GrpcChannel OpenChannel(Uri address)
    {
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        };
        if (Tls is not null)
        {
            handler.SslOptions = Tls.ClientOptions();
        }
        return GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
    }
}
