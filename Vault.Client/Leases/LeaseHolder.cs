using Grpc.Core;
using Vault.Protocol.V1;

namespace Vault.Client.Leases;

/// <summary>
/// The token a lease was taken with. The server ends a lease when that token dies, so a lease
/// taken with a token the client manages (an AppRole login) keeps that token renewed for as long
/// as the lease lives — even after the client has logged in again and moved on to a new token.
/// </summary>
internal sealed class LeaseHolder(Metadata headers, TokenService.TokenServiceClient? tokens, DateTimeOffset? expiresAt, DateTimeOffset? maxExpiresAt, TimeProvider time)
{
    private long _expiresAtMs = (expiresAt ?? DateTimeOffset.MaxValue).ToUnixTimeMilliseconds();
    private long _renewedAtMs = time.GetUtcNow().ToUnixTimeMilliseconds();
    private long _retryAtMs;

    /// <summary>The authorization header of the token.</summary>
    public Metadata Headers { get; } = headers;

    /// <summary>The token's hard end (its max TTL) when known; no lease it took outlives it.</summary>
    public DateTimeOffset? End { get; } = maxExpiresAt;

    /// <summary>Whether this holder keeps its token renewed (a token the client logged in for).</summary>
    public bool Renews => tokens is not null && End is not null;

    /// <summary>When the token should be renewed next: at two thirds of its time left.</summary>
    public DateTimeOffset DueAt
    {
        get
        {
            if (!Renews)
            {
                return DateTimeOffset.MaxValue;
            }
            var retryAt = Interlocked.Read(ref _retryAtMs);
            if (retryAt != 0)
            {
                return DateTimeOffset.FromUnixTimeMilliseconds(retryAt);
            }
            var renewedAt = DateTimeOffset.FromUnixTimeMilliseconds(Interlocked.Read(ref _renewedAtMs));
            var expires = DateTimeOffset.FromUnixTimeMilliseconds(Interlocked.Read(ref _expiresAtMs));
            return expires >= End ? DateTimeOffset.MaxValue : renewedAt + (expires - renewedAt) * (2.0 / 3.0);
        }
    }

    /// <summary>Renews the token (a token may always renew itself).</summary>
    /// <exception cref="RpcException">Unauthenticated when the token is already dead.</exception>
    public async Task RenewAsync(TimeSpan retryAfterFailure, CancellationToken cancellationToken)
    {
        try
        {
            var info = await tokens!.RenewAsync(new RenewTokenRequest(), new CallOptions(Headers, cancellationToken: cancellationToken)).ConfigureAwait(false);
            Interlocked.Exchange(ref _renewedAtMs, time.GetUtcNow().ToUnixTimeMilliseconds());
            Interlocked.Exchange(ref _retryAtMs, 0);
            if (info.ExpiresAt is not null)
            {
                Interlocked.Exchange(ref _expiresAtMs, info.ExpiresAt.ToDateTimeOffset().ToUnixTimeMilliseconds());
            }
        }
        catch (RpcException ex) when (ex.StatusCode is not (StatusCode.Unauthenticated or StatusCode.PermissionDenied or StatusCode.Cancelled))
        {
            // Try again soon; the lease's own renewal reports a lasting failure.
            Interlocked.Exchange(ref _retryAtMs, (time.GetUtcNow() + retryAfterFailure).ToUnixTimeMilliseconds());
            throw;
        }
    }
}
