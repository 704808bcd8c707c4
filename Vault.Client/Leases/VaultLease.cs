using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Vault.Client.Internal;
using Vault.Clocks;
using Vault.Protocol.V1;

namespace Vault.Client.Leases;

/// <summary>
/// A credential held under a lease: renewed in the background before it expires, revoked (checked
/// in) on <see cref="DisposeAsync"/>. Returned by <see cref="VaultClient.CheckoutAsync"/> (a fresh
/// database user) and <see cref="VaultClient.CheckoutAccountAsync"/> (an account of a check-out set).
/// </summary>
/// <remarks>
/// <para>
/// Renewal happens at <see cref="VaultLeaseOptions.RenewAt"/> of the time left (two thirds by
/// default). A failure the server may recover from (unreachable, sealed, overloaded) is retried
/// with backoff until the lease's end; a final answer (the lease is gone, the token may not renew
/// it) stops renewal at once. Either way <see cref="Ending"/> is cancelled and
/// <see cref="RenewalFailed"/> raised; <see cref="Expired"/> is cancelled when the lease ends.
/// </para>
/// <para>
/// The lease is renewed and revoked with the token that took it (its holder), even if the client
/// has since logged in again; a lease never outlives that token. When the client logged in itself
/// (AppRole), the lease keeps its holder token renewed too, and <see cref="MaxExpiresAt"/> is the
/// earlier of the lease's max TTL and the token's.
/// </para>
/// </remarks>
public sealed class VaultLease : IAsyncDisposable
{
    private static readonly TimeSpan MinimumIncrement = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxCallTime = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan ClockRecheck = TimeSpan.FromMinutes(1);
    private readonly LeaseService.LeaseServiceClient _leases;
    private readonly LeaseHolder _holder;
    private readonly VaultLeaseOptions _options;
    private readonly ILogger _logger;
    private readonly TimeSpan _increment;
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _ending = new();
    private readonly CancellationTokenSource _expired;
    private readonly TimeProvider _time;
    private readonly Task _renewal;
    private readonly DateTimeOffset _end;
    private long _expiresAtMs;
    private long _renewedAtMs;
    private int _disposed;
    private Exception? _renewalError;

    internal VaultLease(LeaseService.LeaseServiceClient leases, LeaseHolder holder, IssuedCredential issued, VaultLeaseOptions options, ILogger logger)
    {
        _leases = leases;
        _holder = holder;
        _options = options;
        _time = options.TimeProvider;
        // Cancelled at the end of a lease that is no longer renewed, on the lease's clock (ExpireAtAsync).
        _expired = new CancellationTokenSource();
        _logger = logger;
        LeaseId = issued.Lease.Id;
        Role = issued.Lease.Role;
        Credential = new VaultCredential(issued.Username, issued.Password);
        IssuedAt = issued.Lease.IssuedAt.ToDateTimeOffset();
        var leaseMax = issued.Lease.MaxExpiresAt.ToDateTimeOffset();
        // The server ends a lease when the token that took it dies: renewal cannot go past that.
        _end = holder.End is { } end && end < leaseMax ? end : leaseMax;
        _expiresAtMs = issued.Lease.ExpiresAt.ToDateTimeOffset().ToUnixTimeMilliseconds();
        _renewedAtMs = IssuedAt.ToUnixTimeMilliseconds();
        var issuedTtl = ExpiresAt - IssuedAt;
        Ttl = issuedTtl;
        _increment = options.Increment ?? (issuedTtl > MinimumIncrement ? issuedTtl : MinimumIncrement);
        _renewal = Task.Run(RenewLoopAsync);
    }

    /// <summary>The lease's id: <c>dynamic/&lt;role&gt;/…</c> or <c>checkout/&lt;set&gt;/…</c>.</summary>
    public string LeaseId { get; }

    /// <summary>The dynamic role or the check-out set the credential came from.</summary>
    public string Role { get; }

    /// <summary>The user name and password; valid until the lease ends.</summary>
    public VaultCredential Credential { get; }

    /// <summary>The user name to log in with.</summary>
    public string Username => Credential.Username;

    /// <summary>The password; never log it.</summary>
    public string Password => Credential.Password;

    /// <summary>When the server issued the lease.</summary>
    public DateTimeOffset IssuedAt { get; }

    /// <summary>The lease's TTL as issued (up to <see cref="MaxExpiresAt"/> when that came first): how long it runs between renewals.</summary>
    public TimeSpan Ttl { get; }

    /// <summary>When the lease ends unless renewed; moves forward with each renewal.</summary>
    public DateTimeOffset ExpiresAt
    {
        get
        {
            var expiresAt = DateTimeOffset.FromUnixTimeMilliseconds(Interlocked.Read(ref _expiresAtMs));
            return expiresAt < _end ? expiresAt : _end;
        }
    }

    /// <summary>
    /// The latest end any renewal can reach: the role's or set's max TTL from issue, or the end of
    /// the token that took the lease (an AppRole token's max TTL) when that comes first.
    /// </summary>
    public DateTimeOffset MaxExpiresAt => _end;

    /// <summary>
    /// When a long-running user should have moved to a new lease: the later of
    /// <see cref="MaxExpiresAt"/> minus one <see cref="Ttl"/>, and two thirds of the way from
    /// <see cref="IssuedAt"/> to <see cref="MaxExpiresAt"/>. Known at issue, so it does not depend on
    /// when the renewal that reaches the max TTL happens to run.
    /// </summary>
    /// <remarks>
    /// One TTL of lead: the new lease is taken while the old one still has as long to run as the
    /// vault gives any lease between renewals, so a slow or retried checkout (a busy vault, a busy
    /// database) still lands well before the old user is dropped at the max end. Two thirds of the
    /// whole life at the earliest: a lease whose TTL is close to its max TTL is still used for most
    /// of its life instead of being replaced at once. <see cref="Credentials.VaultCredentialProvider"/>
    /// switches at this time; a replaced lease is revoked after the provider's overlap.
    /// </remarks>
    public DateTimeOffset ReplaceAt
    {
        get
        {
            var planned = _end - Ttl;
            var earliest = IssuedAt + (_end - IssuedAt) * (2.0 / 3.0);
            return planned > earliest ? planned : earliest;
        }
    }

    /// <summary>
    /// Cancelled when the lease will not be renewed any more: its max TTL is reached, or renewal
    /// failed for good (see <see cref="RenewalError"/>). The lease then ends at <see cref="ExpiresAt"/>;
    /// a long-running user should take a new credential now.
    /// </summary>
    public CancellationToken Ending => _ending.Token;

    /// <summary>Cancelled when the lease has ended: expired without renewal, gone from the server, or disposed.</summary>
    public CancellationToken Expired => _expired.Token;

    /// <summary>Why renewal stopped, when it failed; null while renewing or after a normal end at the max TTL.</summary>
    public Exception? RenewalError => Volatile.Read(ref _renewalError);

    /// <summary>Raised once, on a background thread, when renewal has failed for good.</summary>
    public event EventHandler<VaultLeaseRenewalFailedEventArgs>? RenewalFailed;

    /// <summary>Raised on a background thread after each successful background renewal, with the new expiry.</summary>
    public event EventHandler<DateTimeOffset>? Renewed;

    /// <summary>Renews the lease now, on top of the background renewal.</summary>
    /// <param name="increment">How far to extend it from now; null uses the lease's renewal increment.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The new expiry (capped at <see cref="MaxExpiresAt"/>).</returns>
    /// <exception cref="RpcException">NotFound when the lease is gone; FailedPrecondition when it has ended.</exception>
    /// <exception cref="ObjectDisposedException">The lease was disposed.</exception>
    public async Task<DateTimeOffset> RenewAsync(TimeSpan? increment = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var lease = await RenewOnceAsync(increment ?? _increment, cancellationToken).ConfigureAwait(false);
        return lease.ExpiresAt.ToDateTimeOffset();
    }

    /// <summary>
    /// Revokes (checks in) the lease now and stops renewing it. Unlike <see cref="DisposeAsync"/>
    /// this reports a failure to the caller.
    /// </summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The lease as the server left it (revoked, or still being revoked when the target did not answer).</returns>
    /// <exception cref="RpcException">NotFound when the lease is already gone.</exception>
    public async Task<Lease> RevokeAsync(CancellationToken cancellationToken = default)
    {
        await StopRenewalAsync().ConfigureAwait(false);
        var lease = await _leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = LeaseId }, Call(cancellationToken)).ConfigureAwait(false);
        ClientLog.LeaseRevoked(_logger, LeaseId, lease.State);
        Cancel(_ending);
        Cancel(_expired);
        return lease;
    }

    /// <summary>
    /// Stops renewing and revokes the lease (unless <see cref="VaultLeaseOptions.RevokeOnDispose"/>
    /// is off). Never throws: a lease already gone is fine, and any other failure is logged — the
    /// lease then ends on its own at <see cref="ExpiresAt"/>.
    /// </summary>
    /// <returns>A task that completes when the lease is revoked or the attempt has given up.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await StopRenewalAsync().ConfigureAwait(false);
        if (_options.RevokeOnDispose && !_expired.IsCancellationRequested)
        {
            using var timeout = new CancellationTokenSource(_options.RevokeTimeout);
            try
            {
                var lease = await _leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = LeaseId }, Call(timeout.Token)).ConfigureAwait(false);
                ClientLog.LeaseRevoked(_logger, LeaseId, lease.State);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
            {
                ClientLog.LeaseAlreadyGone(_logger, LeaseId);
            }
            catch (RpcException ex)
            {
                ClientLog.LeaseRevokeFailed(_logger, LeaseId, ex.StatusCode, ex.Status.Detail, ExpiresAt);
            }
            catch (OperationCanceledException)
            {
                ClientLog.LeaseRevokeFailed(_logger, LeaseId, StatusCode.DeadlineExceeded, "no answer within the revoke timeout", ExpiresAt);
            }
        }
        Cancel(_ending);
        Cancel(_expired);
        _stop.Dispose();
    }

    /// <summary>The lease's id and expiry; never the password.</summary>
    /// <returns>A description safe for logs.</returns>
    public override string ToString() => $"VaultLease {{ LeaseId = {LeaseId}, Username = {Username}, ExpiresAt = {ExpiresAt:O} }}";

    private async Task StopRenewalAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await _stop.CancelAsync().ConfigureAwait(false);
        }
        try
        {
            await _renewal.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopped while waiting: the expected end of the loop.
        }
    }

    private async Task RenewLoopAsync()
    {
        var stop = _stop.Token;
        var renewing = true;
        while (!stop.IsCancellationRequested)
        {
            var expiresAt = ExpiresAt;
            if (renewing && expiresAt >= MaxExpiresAt)
            {
                ClientLog.LeaseAtMaxTtl(_logger, LeaseId, expiresAt);
                EndRenewal(error: null, gone: false);
                renewing = false;
            }
            var renewedAt = DateTimeOffset.FromUnixTimeMilliseconds(Interlocked.Read(ref _renewedAtMs));
            var leaseDue = renewing ? renewedAt + (expiresAt - renewedAt) * _options.RenewAt : DateTimeOffset.MaxValue;
            // The holder token must outlive the lease, also once the lease is no longer renewed.
            var holderDue = _holder.DueAt < expiresAt ? _holder.DueAt : DateTimeOffset.MaxValue;
            var due = leaseDue < holderDue ? leaseDue : holderDue;
            if (due == DateTimeOffset.MaxValue)
            {
                return;
            }
            await WaitUntilAsync(due, stop).ConfigureAwait(false);
            if (holderDue <= leaseDue && !await RenewHolderAsync(stop).ConfigureAwait(false))
            {
                return;
            }
            if (renewing && leaseDue < holderDue && !await RenewWithRetriesAsync(stop).ConfigureAwait(false))
            {
                return;
            }
        }
    }

    /// <summary>
    /// Waits until <paramref name="due"/> on the lease's clock, looking at the clock again at least
    /// once a minute: a machine that slept, or a clock set forward, delays a renewal by at most a
    /// minute, not by the time it lost (a delay counts elapsed time, not the time of day).
    /// </summary>
    private async Task WaitUntilAsync(DateTimeOffset due, CancellationToken stop)
    {
        for (var now = _time.GetUtcNow(); now < due; now = _time.GetUtcNow())
        {
            await _time.UntilAsync(due - now < ClockRecheck ? due : now + ClockRecheck, stop).ConfigureAwait(false);
        }
    }

    /// <returns>False when the holder token is dead, and the lease with it.</returns>
    private async Task<bool> RenewHolderAsync(CancellationToken stop)
    {
        try
        {
            await _holder.RenewAsync(_options.RetryDelay, stop).ConfigureAwait(false);
            return true;
        }
        catch (RpcException ex) when (stop.IsCancellationRequested || ex.StatusCode == StatusCode.Cancelled)
        {
            return false;
        }
        catch (RpcException ex) when (ex.StatusCode is StatusCode.Unauthenticated or StatusCode.PermissionDenied)
        {
            EndRenewal(ex, gone: true);
            return false;
        }
        catch (RpcException ex)
        {
            ClientLog.LeaseRenewRetrying(_logger, LeaseId, ex.StatusCode, ex.Status.Detail, _options.RetryDelay);
            return true;
        }
    }

    /// <returns>False when renewal has ended for good.</returns>
    private async Task<bool> RenewWithRetriesAsync(CancellationToken stop)
    {
        var delay = _options.RetryDelay;
        while (true)
        {
            try
            {
                var lease = await RenewOnceAsync(_increment, stop).ConfigureAwait(false);
                var expiresAt = lease.ExpiresAt.ToDateTimeOffset();
                ClientLog.LeaseRenewed(_logger, LeaseId, expiresAt);
                Raise(Renewed, expiresAt);
                return true;
            }
            catch (RpcException ex) when (stop.IsCancellationRequested || ex.StatusCode == StatusCode.Cancelled)
            {
                return false;
            }
            catch (RpcException ex) when (IsFinal(ex.StatusCode))
            {
                // The holder may always renew its own lease: NotFound, PermissionDenied (the server's
                // answer for an id it does not know, to a token without lease policy) and
                // Unauthenticated (the holder token died, and its leases with it) all mean it is gone.
                EndRenewal(ex, gone: ex.StatusCode is StatusCode.NotFound or StatusCode.PermissionDenied or StatusCode.Unauthenticated);
                return false;
            }
            catch (RpcException ex)
            {
                var left = ExpiresAt - _time.GetUtcNow();
                if (left <= delay)
                {
                    EndRenewal(ex, gone: false);
                    return false;
                }
                ClientLog.LeaseRenewRetrying(_logger, LeaseId, ex.StatusCode, ex.Status.Detail, delay);
                await _time.UntilAsync(_time.GetUtcNow() + delay, stop).ConfigureAwait(false);
                delay = delay * 2 < _options.MaxRetryDelay ? delay * 2 : _options.MaxRetryDelay;
            }
        }
    }

    private async Task<Lease> RenewOnceAsync(TimeSpan increment, CancellationToken cancellationToken)
    {
        var request = new RenewLeaseRequest { LeaseId = LeaseId, Increment = Duration.FromTimeSpan(increment) };
        var left = ExpiresAt - _time.GetUtcNow();
        // A hung call must not outlast the lease: bound it by the time left (at least 1 s, at most 30 s).
        var callTime = left < MinimumIncrement ? MinimumIncrement : left > MaxCallTime ? MaxCallTime : left;
        var lease = await _leases.RenewLeaseAsync(request, Call(cancellationToken).WithDeadline(DateTime.UtcNow + callTime)).ConfigureAwait(false);
        Interlocked.Exchange(ref _renewedAtMs, _time.GetUtcNow().ToUnixTimeMilliseconds());
        Interlocked.Exchange(ref _expiresAtMs, lease.ExpiresAt.ToDateTimeOffset().ToUnixTimeMilliseconds());
        return lease;
    }

    /// <summary>Answers that retrying will not change: the lease is gone, or this token may not renew it, or the request is wrong.</summary>
    private static bool IsFinal(StatusCode code) =>
        code is StatusCode.NotFound or StatusCode.PermissionDenied or StatusCode.Unauthenticated or StatusCode.InvalidArgument or StatusCode.Unimplemented;

    /// <summary>Ends <see cref="Expired"/> when the clock reads <paramref name="expiresAt"/>, unless a revoke or dispose ended it first.</summary>
    private async Task ExpireAtAsync(DateTimeOffset expiresAt)
    {
        try
        {
            await _time.UntilAsync(expiresAt, _expired.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        Cancel(_expired);
    }

    private void EndRenewal(Exception? error, bool gone)
    {
        var expiresAt = ExpiresAt;
        if (error is not null)
        {
            Volatile.Write(ref _renewalError, error);
            var code = error is RpcException rpc ? rpc.StatusCode : StatusCode.Unknown;
            ClientLog.LeaseRenewFailed(_logger, LeaseId, code, error is RpcException r ? r.Status.Detail : error.Message, expiresAt);
        }
        Cancel(_ending);
        var left = expiresAt - _time.GetUtcNow();
        if (gone || left <= TimeSpan.Zero)
        {
            Cancel(_expired);
        }
        else
        {
            _ = ExpireAtAsync(expiresAt);
        }
        if (error is not null)
        {
            Raise(RenewalFailed, new VaultLeaseRenewalFailedEventArgs(error, gone ? _time.GetUtcNow() : expiresAt));
        }
    }

    private void Raise<T>(EventHandler<T>? handler, T args)
    {
        try
        {
            handler?.Invoke(this, args);
        }
        catch (Exception ex)
        {
            // A subscriber's bug must not stop the renewal loop.
            ClientLog.LeaseHandlerFailed(_logger, LeaseId, ex);
        }
    }

    private void Cancel(CancellationTokenSource source)
    {
        try
        {
            source.Cancel();
        }
        catch (AggregateException ex)
        {
            ClientLog.LeaseHandlerFailed(_logger, LeaseId, ex);
        }
    }

    private CallOptions Call(CancellationToken cancellationToken) => new(_holder.Headers, cancellationToken: cancellationToken);
}
