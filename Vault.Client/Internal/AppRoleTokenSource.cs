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
internal sealed class AppRoleTokenSource(Grpc.Net.Client.GrpcChannel channel, string roleId, string secretId, TimeProvider time, ILogger logger) : IDisposable
{
    private const double RefreshFraction = 2.0 / 3.0;
    private static readonly TimeSpan RetryAfterFailure = TimeSpan.FromSeconds(5);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private volatile TokenState? _state;

    /// <summary>The token to send now, logging in or renewing first when it is due.</summary>
    /// <exception cref="RpcException">The login failed and there is no unexpired token to fall back on.</exception>
    public async ValueTask<string> GetTokenAsync(CancellationToken cancellationToken)
    {
        var state = _state;
        if (state is not null && time.GetUtcNow() < state.RefreshAt)
        {
            return state.Token;
        }
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            state = _state;
            if (state is not null && time.GetUtcNow() < state.RefreshAt)
            {
                return state.Token;
            }
            _state = await RefreshAsync(state, cancellationToken).ConfigureAwait(false);
            return _state.Token;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<TokenState> RefreshAsync(TokenState? state, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (state is not null && now < state.ExpiresAt && state.ExpiresAt < state.MaxExpiresAt)
        {
            try
            {
                var info = await new TokenService.TokenServiceClient(channel)
                    .RenewAsync(new RenewTokenRequest(), Bearer(state.Token, cancellationToken)).ConfigureAwait(false);
                var renewed = TokenState.From(state.Token, info, time.GetUtcNow());
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
        catch (RpcException ex) when (ex.StatusCode != StatusCode.Cancelled && state is not null && time.GetUtcNow() < state.ExpiresAt)
        {
            // The old token still works: keep using it and try again shortly.
            ClientLog.LoginFailed(logger, ex.StatusCode, ex.Status.Detail);
            return state with { RefreshAt = Min(time.GetUtcNow() + RetryAfterFailure, state.ExpiresAt) };
        }
    }

    public void Dispose() => _gate.Dispose();

    private static CallOptions Bearer(string token, CancellationToken cancellationToken) =>
        new(new Metadata { { "authorization", $"Bearer {token}" } }, cancellationToken: cancellationToken);

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private sealed record TokenState(string Token, string Accessor, DateTimeOffset RefreshAt, DateTimeOffset ExpiresAt, DateTimeOffset MaxExpiresAt)
    {
        public static TokenState From(string token, TokenInfo info, DateTimeOffset now)
        {
            if (info.ExpiresAt is null)
            {
                return new TokenState(token, info.Accessor, DateTimeOffset.MaxValue, DateTimeOffset.MaxValue, DateTimeOffset.MaxValue);
            }
            var expiresAt = info.ExpiresAt.ToDateTimeOffset();
            var maxExpiresAt = info.MaxExpiresAt?.ToDateTimeOffset() ?? expiresAt;
            var remaining = expiresAt - now;
            var refreshAt = remaining > TimeSpan.Zero ? now + remaining * RefreshFraction : now;
            return new TokenState(token, info.Accessor, refreshAt, expiresAt, maxExpiresAt);
        }
    }
}
