using Grpc.Core;
using Grpc.Net.Client;
using Vault.Client.Internal;
using Vault.Protocol.V1;

namespace Vault.Client;

/// <summary>
/// A thin, typed client for the vault's gRPC API (system, KV, token, policy and audit services) over
/// one <see cref="GrpcChannel"/>. Every call carries the configured token as
/// <c>authorization: Bearer &lt;token&gt;</c>.
/// </summary>
/// <remarks>
/// Thread-safe: one instance can serve a whole application. Server errors surface as
/// <see cref="RpcException"/> with the server's status code (<see cref="StatusCode.NotFound"/>,
/// <see cref="StatusCode.PermissionDenied"/>, <see cref="StatusCode.FailedPrecondition"/> while sealed, …);
/// an unreachable server surfaces as <see cref="StatusCode.Unavailable"/>.
/// </remarks>
public sealed partial class VaultClient : IDisposable
{
    private readonly GrpcChannel _channel;
    private readonly SystemService.SystemServiceClient _system;
    private readonly KvService.KvServiceClient _kv;
    private readonly TokenService.TokenServiceClient _tokens;
    private readonly PolicyService.PolicyServiceClient _policies;
    private readonly AuditService.AuditServiceClient _audit;
    private readonly Metadata? _headers;

    /// <summary>Creates a client; no connection is made until the first call.</summary>
    /// <param name="options">Address, token and TLS trust settings.</param>
    /// <exception cref="ArgumentException">The address is not an absolute http(s) URL, or the CA certificate file cannot be loaded.</exception>
    public VaultClient(VaultClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!Uri.TryCreate(options.Address, UriKind.Absolute, out var address) || (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"address '{options.Address}' is not an absolute http:// or https:// URL");
        }
        Address = address;
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = options.ConnectTimeout,
        };
        if (!string.IsNullOrEmpty(options.CaCertificateFile))
        {
            handler.SslOptions.RemoteCertificateValidationCallback = CustomRootValidator.FromPemFile(options.CaCertificateFile).Validate;
        }
        _channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
        _system = new SystemService.SystemServiceClient(_channel);
        _kv = new KvService.KvServiceClient(_channel);
        _tokens = new TokenService.TokenServiceClient(_channel);
        _policies = new PolicyService.PolicyServiceClient(_channel);
        _audit = new AuditService.AuditServiceClient(_channel);
        if (!string.IsNullOrEmpty(options.Token))
        {
            _headers = new Metadata { { "authorization", $"Bearer {options.Token}" } };
        }
    }

    /// <summary>The server address this client talks to.</summary>
    public Uri Address { get; }

    /// <summary>Closes the channel and its connections.</summary>
    public void Dispose() => _channel.Dispose();

    private CallOptions Call(CancellationToken cancellationToken) => new(headers: _headers, cancellationToken: cancellationToken);
}
