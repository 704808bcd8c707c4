using Google.Protobuf.WellKnownTypes;
using Vault.Protocol.V1;

namespace Vault.Client;

public sealed partial class VaultClient
{
    /// <summary>Creates a child token of the calling token.</summary>
    /// <param name="request">Policies, TTL, max TTL, display name and whether the token is an orphan.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The new token (shown once) and its description.</returns>
    /// <exception cref="Grpc.Core.RpcException">PermissionDenied when asking for policies the caller does not hold.</exception>
    public async Task<CreateTokenResponse> CreateTokenAsync(CreateTokenRequest request, CancellationToken cancellationToken = default) =>
        await _tokens.CreateAsync(request, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Describes the calling token, or another token by its accessor.</summary>
    /// <param name="accessor">The other token's accessor; null or empty means the calling token.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The token's policies, lifetime and parent.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown accessor.</exception>
    public async Task<TokenInfo> LookupTokenAsync(string? accessor = null, CancellationToken cancellationToken = default) =>
        await _tokens.LookupAsync(new LookupTokenRequest { Accessor = accessor ?? "" }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Extends a token's lifetime, never past its max TTL.</summary>
    /// <param name="accessor">The other token's accessor; null or empty means the calling token.</param>
    /// <param name="increment">The new remaining lifetime; null uses the token's own TTL.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The token after renewal.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task<TokenInfo> RenewTokenAsync(string? accessor = null, TimeSpan? increment = null, CancellationToken cancellationToken = default)
    {
        var request = new RenewTokenRequest { Accessor = accessor ?? "" };
        if (increment is { } value)
        {
            request.Increment = Duration.FromTimeSpan(value);
        }
        return await _tokens.RenewAsync(request, Call(cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Revokes a token and all its children.</summary>
    /// <param name="accessor">The other token's accessor; null or empty revokes the calling token.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many tokens were revoked, the token itself included.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task<uint> RevokeTokenAsync(string? accessor = null, CancellationToken cancellationToken = default) =>
        (await _tokens.RevokeAsync(new RevokeTokenRequest { Accessor = accessor ?? "" }, Call(cancellationToken)).ConfigureAwait(false)).Revoked;
}
