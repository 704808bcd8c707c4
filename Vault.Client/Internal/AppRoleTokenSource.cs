using Grpc.Core;
using Microsoft.Extensions.Logging;
using Vault.Protocol.V1;

namespace Vault.Client.Internal;

/// <summary>
/// The token of a client that logs in with AppRole: logs in on first use, renews the token at two
/// thirds of its lifetime, and logs in again once renewal cannot extend it (its max TTL is near).
/// </summary>
/// <remarks>
/// Renewal is preferred over a new login because leases die with the token that took them: a
/// renewed token keeps its leases, a new one does not. Refreshing is lazy (done by the call that
/// finds the token due) and serialised, so a burst of calls triggers one login.
/// </remarks>
internal sealed class AppRoleTokenSource(Grpc.Core.CallInvoker channel, string roleId, string secretId, TimeProvider time, ILogger logger) : IDisposable
{
    private const double RefreshFraction = 2.0 / 3.0;
    private static readonly TimeSpan RetryAfterFailure = TimeSpan.FromSeconds(5);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private volatile TokenState? _state;

    /// <summary>The token to send now, logging in or renewing first when it is due.</summary>
    /// <exception cref="RpcException">The login failed and there is no unexpired token to fall back on.</exception>
    public async ValueTask<string> GetTokenAsync(CancellationToken cancellationToken) =>
        (await GetTokenAsync(TimeSpan.Zero, cancellationToken).ConfigureAwait(false)).Token;

    /// <summary>
    /// A token for taking a lease, and the latest moment it can live (leases die with it). When the
    /// current token's hard end is nearer than <paramref name="minimumLifetime"/> and it is past half
    /// its life, a fresh login is made first, so the new lease is not taken under a dying token.
    /// </summary>
    /// <exception cref="RpcException">The login failed and there is no unexpired token to fall back on.</exception>
    public async ValueTask<(string Token, DateTimeOffset ExpiresAt, DateTimeOffset HardEnd)> GetTokenAsync(TimeSpan minimumLifetime, CancellationToken cancellationToken)
    {
        var state = _state;
        if (state is not null && IsGoodFor(state, minimumLifetime))
        {
            return (state.Token, state.ExpiresAt, state.MaxExpiresAt);
        }
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            state = _state;
            if (state is not null && IsGoodFor(state, minimumLifetime))
            {
                return (state.Token, state.ExpiresAt, state.MaxExpiresAt);
            }
            // A token too close to its hard end for the caller cannot be helped by renewal: log in.
            var left = state is null ? TimeSpan.Zero : state.MaxExpiresAt - time.GetUtcNow();
            var dying = state is not null && left < minimumLifetime && left <= (state.MaxExpiresAt - state.IssuedAt) / 2;
            _state = await RefreshAsync(dying ? null : state, fallback: state, cancellationToken).ConfigureAwait(false);
            return (_state.Token, _state.ExpiresAt, _state.MaxExpiresAt);
        }
        finally
        {
            _gate.Release();
        }
    }

    private bool IsGoodFor(TokenState state, TimeSpan minimumLifetime)
    {
        var now = time.GetUtcNow();
        if (now >= state.RefreshAt)
        {
            return false;
        }
        var left = state.MaxExpiresAt - now;
        return left >= minimumLifetime || left > (state.MaxExpiresAt - state.IssuedAt) / 2;
    }

    /// <param name="state">The token to renew; null logs in.</param>
    /// <param name="fallback">The token to keep using when the login fails and it has not expired.</param>
    /// <param name="cancellationToken">Cancels the calls.</param>
    private async Task<TokenState> RefreshAsync(TokenState? state, TokenState? fallback, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (state is not null && now < state.ExpiresAt && state.ExpiresAt < state.MaxExpiresAt)
        {
            try
            {
                var info = await new TokenService.TokenServiceClient(channel)
                    .RenewAsync(new RenewTokenRequest(), Bearer(state.Token, cancellationToken)).ConfigureAwait(false);
                var renewed = TokenState.From(state.Token, info, time.GetUtcNow()) with { IssuedAt = state.IssuedAt };
                ClientLog.TokenRenewed(logger, info.Accessor, renewed.ExpiresAt);
                return renewed;
            }
            catch (RpcException ex) when (ex.StatusCode != StatusCode.Cancelled)
            {
                ClientLog.TokenRenewFailed(logger, state.Accessor, ex.StatusCode, ex.Status.Detail);
            }
        }
        try
        {
            var login = await new AppRoleService.AppRoleServiceClient(channel)
                .LoginAsync(new AppRoleLoginRequest { RoleId = roleId, SecretId = secretId }, new CallOptions(cancellationToken: cancellationToken))
                .ConfigureAwait(false);
            var fresh = TokenState.From(login.Token, login.Info, time.GetUtcNow());
            ClientLog.LoggedIn(logger, login.Info.Accessor, fresh.ExpiresAt);
            return fresh;
        }
        catch (RpcException ex) when (ex.StatusCode != StatusCode.Cancelled && fallback is not null && time.GetUtcNow() < fallback.ExpiresAt)
        {
            // The old token still works: keep using it and try again shortly.
            ClientLog.LoginFailed(logger, ex.StatusCode, ex.Status.Detail);
            return fallback with { RefreshAt = Min(time.GetUtcNow() + RetryAfterFailure, fallback.ExpiresAt) };
        }
    }

    public void Dispose() => _gate.Dispose();

    private static CallOptions Bearer(string token, CancellationToken cancellationToken) =>
        new(new Metadata { { "authorization", $"Bearer {token}" } }, cancellationToken: cancellationToken);

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private sealed record TokenState(string Token, string Accessor, DateTimeOffset IssuedAt, DateTimeOffset RefreshAt, DateTimeOffset ExpiresAt, DateTimeOffset MaxExpiresAt)
    {
        public static TokenState From(string token, TokenInfo info, DateTimeOffset now)
        {
            if (info.ExpiresAt is null)
            {
                return new TokenState(token, info.Accessor, now, DateTimeOffset.MaxValue, DateTimeOffset.MaxValue, DateTimeOffset.MaxValue);
            }
            var expiresAt = info.ExpiresAt.ToDateTimeOffset();
            var maxExpiresAt = info.MaxExpiresAt?.ToDateTimeOffset() ?? expiresAt;
            var remaining = expiresAt - now;
            var refreshAt = remaining > TimeSpan.Zero ? now + remaining * RefreshFraction : now;
            return new TokenState(token, info.Accessor, now, refreshAt, expiresAt, maxExpiresAt);
        }
    }
}
