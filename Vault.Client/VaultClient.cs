using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Vault.Client.Internal;
using Vault.Client.Leases;
using Vault.Protocol.V1;

namespace Vault.Client;

/// <summary>
/// A thin, typed client for the vault's gRPC API (system, KV, token, policy, audit, rotation and
/// lease services) over one <see cref="GrpcChannel"/>. Every call carries the client's token as
/// <c>authorization: Bearer &lt;token&gt;</c>: the configured one, or one the client got by logging
/// in with AppRole (<see cref="VaultClientOptions.RoleId"/>) and keeps renewed.
/// </summary>
/// <remarks>
/// Thread-safe: one instance can serve a whole application. Server errors surface as
/// <see cref="RpcException"/> with the server's status code (<see cref="StatusCode.NotFound"/>,
/// <see cref="StatusCode.PermissionDenied"/>, <see cref="StatusCode.FailedPrecondition"/> while sealed, …);
/// an unreachable server surfaces as <see cref="StatusCode.Unavailable"/>.
/// </remarks>
public sealed partial class VaultClient : IDisposable
{
    private readonly GrpcChannel[] _channels;
    private readonly FailoverInvoker _invoker;
    private readonly SystemService.SystemServiceClient _system;
    private readonly KvService.KvServiceClient _kv;
    private readonly TokenService.TokenServiceClient _tokens;
    private readonly PolicyService.PolicyServiceClient _policies;
    private readonly AuditService.AuditServiceClient _audit;
    private readonly Metadata? _headers;
    private readonly AppRoleTokenSource? _appRole;
    private readonly CallCredentials? _appRoleCredentials;
    private readonly TimeSpan? _timeout;

    /// <summary>Creates a client; no connection is made until the first call.</summary>
    /// <param name="options">Address, token (or AppRole ids) and TLS trust settings.</param>
    /// <exception cref="ArgumentException">The address is not an absolute http(s) URL, the CA certificate file cannot be loaded, both a token and AppRole ids (or only one of the ids) are set, or the timeout is not positive.</exception>
    public VaultClient(VaultClientOptions options)
        : this(options, loggerFactory: null)
    {
    }

    /// <summary>Creates a client that logs token renewals, logins and lease renewals; no connection is made until the first call.</summary>
    /// <param name="options">Address, token (or AppRole ids) and TLS trust settings.</param>
    /// <param name="loggerFactory">Where the client's log lines go; null discards them.</param>
    /// <exception cref="ArgumentException">The address is not an absolute http(s) URL, the CA certificate file cannot be loaded, both a token and AppRole ids (or only one of the ids) are set, or the timeout is not positive.</exception>
    public VaultClient(VaultClientOptions options, ILoggerFactory? loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        LoggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        var appRole = !string.IsNullOrEmpty(options.RoleId) || !string.IsNullOrEmpty(options.SecretId);
        if (appRole && (string.IsNullOrEmpty(options.RoleId) || string.IsNullOrEmpty(options.SecretId)))
        {
            throw new ArgumentException("AppRole login needs both a role id and a secret id");
        }
        if (appRole && !string.IsNullOrEmpty(options.Token))
        {
            throw new ArgumentException("set either a token or AppRole ids, not both");
        }
        var addresses = ParseAddresses(options.Address);
        if (options.Timeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"timeout must be positive, not {options.Timeout}");
        }
        _timeout = options.Timeout;
        Address = addresses[0];
        Addresses = addresses;
        _channels = [.. addresses.Select(address =>
        {
            var handler = new SocketsHttpHandler
            {
                EnableMultipleHttp2Connections = true,
                ConnectTimeout = options.ConnectTimeout,
            };
            if (!string.IsNullOrEmpty(options.CaCertificateFile))
            {
                handler.SslOptions.RemoteCertificateValidationCallback = CustomRootValidator.FromPemFile(options.CaCertificateFile).Validate;
            }
            return GrpcChannel.ForAddress(address, new GrpcChannelOptions
            {
                HttpHandler = handler,
                DisposeHttpClient = true,
                // The AppRole token travels as call credentials; over plain http (a dev server, loopback)
                // they must be allowed explicitly. A static token travels as a header either way.
                UnsafeUseInsecureChannelCallCredentials = appRole,
            });
        })];
        _invoker = new FailoverInvoker(_channels);
        _system = new SystemService.SystemServiceClient(_invoker);
        _kv = new KvService.KvServiceClient(_invoker);
        _tokens = new TokenService.TokenServiceClient(_invoker);
        _policies = new PolicyService.PolicyServiceClient(_invoker);
        _audit = new AuditService.AuditServiceClient(_invoker);
        if (!string.IsNullOrEmpty(options.Token))
        {
            _headers = new Metadata { { "authorization", $"Bearer {options.Token}" } };
        }
        if (appRole)
        {
            _appRole = new AppRoleTokenSource(_invoker, options.RoleId!, options.SecretId!, options.TimeProvider ?? TimeProvider.System, LoggerFactory.CreateLogger<VaultClient>());
            var source = _appRole;
            _appRoleCredentials = CallCredentials.FromInterceptor(async (context, metadata) =>
                metadata.Add("authorization", $"Bearer {await source.GetTokenAsync(context.CancellationToken).ConfigureAwait(false)}"));
        }
    }

    /// <summary>Where the client and the helpers built on it (leases, credential providers, integrations) log; a null factory when none was given.</summary>
    public ILoggerFactory LoggerFactory { get; }

    /// <summary>The server address this client talks to.</summary>
    public Uri Address { get; }

    /// <summary>
    /// Every node the client may call, in the order given: calls go to one; when it is UNAVAILABLE
    /// they move to the next, and a call is sent again there only if it never reached the node or
    /// only reads (a write whose fate is unknown is not repeated).
    /// </summary>
    public IReadOnlyList<Uri> Addresses { get; }

    /// <summary>The node calls go to now.</summary>
    public Uri CurrentAddress => Addresses[_invoker.Current];

    /// <summary>One address, or several separated by commas, each an absolute http:// or https:// URL, all of one scheme.</summary>
    private static Uri[] ParseAddresses(string? text)
    {
        var parts = (text ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var addresses = new List<Uri>();
        foreach (var part in parts)
        {
            if (!Uri.TryCreate(part, UriKind.Absolute, out var address) || (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps))
            {
                throw new ArgumentException($"address '{part}' is not an absolute http:// or https:// URL");
            }
            addresses.Add(address);
        }
        if (addresses.Count == 0)
        {
            throw new ArgumentException($"address '{text}' is not an absolute http:// or https:// URL");
        }
        if (addresses.Select(a => a.Scheme).Distinct().Count() > 1)
        {
            throw new ArgumentException("the addresses mix http:// and https://: give one scheme for every node");
        }
        return [.. addresses];
    }

    /// <summary>Closes the channel and its connections.</summary>
    public void Dispose()
    {
        foreach (var channel in _channels)
        {
            channel.Dispose();
        }
        _appRole?.Dispose();
    }

    /// <summary>Options for one unary call: the token, and the deadline of <see cref="VaultClientOptions.Timeout"/> plus <paramref name="serverWait"/>.</summary>
    private CallOptions Call(CancellationToken cancellationToken, TimeSpan serverWait = default) =>
        _timeout is { } timeout ? Stream(cancellationToken).WithDeadline(DateTime.UtcNow + serverWait + timeout) : Stream(cancellationToken);

    /// <summary>Options for a stream: the token, no deadline (a stream lasts as long as its reader wants).</summary>
    private CallOptions Stream(CancellationToken cancellationToken) =>
        _appRoleCredentials is not null
            ? new(credentials: _appRoleCredentials, cancellationToken: cancellationToken)
            : new(headers: _headers, cancellationToken: cancellationToken);

    /// <summary>
    /// The token to take a lease with (logging in first when needed), kept by the lease for its
    /// renewals and revocation: a lease dies with the token that took it, so a lease keeps a token
    /// the client logged in for renewed, up to that token's max TTL.
    /// </summary>
    /// <param name="leaseTtl">The TTL the lease will be asked for; a token that cannot outlive two of them is replaced by a new login first.</param>
    /// <param name="cancellationToken">Cancels a login.</param>
    /// <param name="time">The clock the lease plans its renewals on.</param>
    private async ValueTask<LeaseHolder> LeaseHolderAsync(TimeSpan? leaseTtl, TimeProvider time, CancellationToken cancellationToken)
    {
        if (_appRole is null)
        {
            return new LeaseHolder(_headers ?? [], tokens: null, expiresAt: null, maxExpiresAt: null, time);
        }
        var token = await _appRole.GetTokenAsync((leaseTtl ?? DefaultLeaseTtl) * 2, cancellationToken).ConfigureAwait(false);
        return new LeaseHolder(
            new Metadata { { "authorization", $"Bearer {token.Token}" } },
            _tokens,
            token.ExpiresAt == DateTimeOffset.MaxValue ? null : token.ExpiresAt,
            token.HardEnd == DateTimeOffset.MaxValue ? null : token.HardEnd,
            time);
    }

    /// <summary>The server's default lease TTL, assumed when the caller asks for none.</summary>
    private static readonly TimeSpan DefaultLeaseTtl = TimeSpan.FromHours(1);
}
