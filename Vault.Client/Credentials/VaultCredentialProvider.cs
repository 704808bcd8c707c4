using Grpc.Core;
using Microsoft.Extensions.Logging;
using Vault.Client.Internal;
using Vault.Client.Leases;
using Vault.Clocks;

namespace Vault.Client.Credentials;

/// <summary>
/// Keeps one database credential current for an application: a dynamic user or a borrowed
/// account under a lease that is renewed and, before it ends, replaced; or a rotation target's
/// credential, re-read as soon as the vault reports a rotation. Driver integrations
/// (<c>Vault.Client.Npgsql</c>, <c>Vault.Client.MySqlConnector</c>) sit on top of it.
/// </summary>
/// <remarks>
/// <para>
/// When the user name changes (a new lease, the other account of an alternating-users target) the
/// previous credential stays known through <see cref="GetPassword"/>: a connection that was being
/// opened with the old user name still gets the matching password. A replaced lease is revoked
/// after <see cref="VaultCredentialProviderOptions.Overlap"/>; a lease is replaced at its
/// <see cref="VaultLease.ReplaceAt"/> (one TTL before its max end, at the earliest two thirds of
/// its life), so the app never holds a user the vault is about to drop; the previous account of an
/// alternating-users target stays valid until the target's next rotation.
/// </para>
/// <para>
/// A single-user rotation target changes its password in place: connections opened between the
/// rotation and the moment this provider has read the new password (one round trip after the
/// vault's notification) are refused. Use the alternating-users strategy for zero refusals.
/// </para>
/// </remarks>
public sealed class VaultCredentialProvider : IAsyncDisposable
{
    private readonly VaultClient _client;
    private readonly VaultCredentialProviderOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _startGate = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<VaultLease> _retiring = [];
    private readonly Lock _lock = new();
    private volatile Snapshot? _snapshot;
    private VaultLease? _lease;
    private Task? _loop;
    private int _disposed;

    /// <summary>Creates a provider; nothing is fetched until <see cref="GetAsync"/>.</summary>
    /// <param name="client">The client to fetch with; its token must be allowed to read the source.</param>
    /// <param name="source">The dynamic role, check-out set or rotation target.</param>
    /// <param name="options">Timings; null uses the defaults.</param>
    public VaultCredentialProvider(VaultClient client, VaultCredentialSource source, VaultCredentialProviderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(source);
        _client = client;
        Source = source;
        _options = options ?? new VaultCredentialProviderOptions();
        _time = _options.TimeProvider ?? TimeProvider.System;
        _logger = client.LoggerFactory.CreateLogger<VaultCredentialProvider>();
    }

    /// <summary>Where the credential comes from.</summary>
    public VaultCredentialSource Source { get; }

    /// <summary>The credential to use now; null until <see cref="GetAsync"/> has completed once.</summary>
    public VaultCredential? Current => _snapshot?.Current;

    /// <summary>The lease the current credential is held under (dynamic roles and check-out sets); null otherwise.</summary>
    public VaultLease? CurrentLease
    {
        get
        {
            lock (_lock)
            {
                return _lease;
            }
        }
    }

    /// <summary>
    /// Raised on a background thread after the credential changed (a new user or a new password),
    /// with the new credential.
    /// </summary>
    public event EventHandler<VaultCredential>? Changed;

    /// <summary>
    /// The credential to use now. The first call fetches it (takes the lease, or reads the target)
    /// and starts keeping it fresh in the background; later calls return at once.
    /// </summary>
    /// <param name="cancellationToken">Cancels the first fetch.</param>
    /// <returns>The current credential.</returns>
    /// <exception cref="RpcException">The first fetch failed: NotFound for an unknown source, PermissionDenied, ResourceExhausted for a set with no free account, Unavailable, …</exception>
    /// <exception cref="ObjectDisposedException">The provider was disposed.</exception>
    public async ValueTask<VaultCredential> GetAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_snapshot is { } ready)
        {
            return ready.Current;
        }
        await _startGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_snapshot is null)
            {
                await StartAsync(cancellationToken).ConfigureAwait(false);
            }
            return _snapshot!.Current;
        }
        finally
        {
            _startGate.Release();
        }
    }

    /// <summary>
    /// The password for <paramref name="username"/> if it is the current user or the one before it;
    /// null otherwise. Lets a connection that was started with the previous user name finish its
    /// login after the credential changed.
    /// </summary>
    /// <param name="username">The user name a connection is logging in with.</param>
    /// <returns>The password, or null for a user name this provider no longer holds.</returns>
    public string? GetPassword(string username)
    {
        var snapshot = _snapshot;
        if (snapshot is null)
        {
            return null;
        }
        if (string.Equals(snapshot.Current.Username, username, StringComparison.Ordinal))
        {
            return snapshot.Current.Password;
        }
        return snapshot.Previous is { } previous && string.Equals(previous.Username, username, StringComparison.Ordinal) ? previous.Password : null;
    }

    /// <summary>Stops refreshing and revokes (checks in) every lease this provider holds. Never throws.</summary>
    /// <returns>A task that completes when the leases are revoked or the attempts gave up.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }
        List<VaultLease> leases;
        lock (_lock)
        {
            leases = [.. _retiring];
            if (_lease is not null)
            {
                leases.Add(_lease);
            }
            _retiring.Clear();
            _lease = null;
        }
        foreach (var lease in leases)
        {
            await lease.DisposeAsync().ConfigureAwait(false);
        }
        _stop.Dispose();
        _startGate.Dispose();
    }

    private async Task StartAsync(CancellationToken cancellationToken)
    {
        if (Source.Kind == VaultCredentialKind.RotationTarget)
        {
            var credential = await _client.GetTargetCredentialAsync(Source.Name, cancellationToken).ConfigureAwait(false);
            Publish(new VaultCredential(credential.Username, credential.Password), credential.Version);
            // The loop outlives the caller's token: it runs until DisposeAsync.
            _loop = Task.Run(() => GuardAsync(() => WatchTargetLoopAsync(credential.Version, _stop.Token)), CancellationToken.None);
        }
        else
        {
            var lease = await AcquireAsync(cancellationToken).ConfigureAwait(false);
            var skew = SkewOf(lease);
            lock (_lock)
            {
                _lease = lease;
            }
            Publish(lease.Credential, version: null);
            _loop = Task.Run(() => GuardAsync(() => LeaseLoopAsync(lease, skew, _stop.Token)), CancellationToken.None);
        }
    }

    /// <summary>Runs a refresh loop to its end: stopping is its normal end, anything else is a bug to log, not to throw at dispose.</summary>
    private async Task GuardAsync(Func<Task> loop)
    {
        try
        {
            await loop().ConfigureAwait(false);
        }
        catch (Exception ex) when (_stop.IsCancellationRequested && ex is OperationCanceledException or RpcException)
        {
            // Stopped by DisposeAsync, possibly in the middle of a call.
        }
        catch (Exception ex)
        {
            ClientLog.CredentialLoopFailed(_logger, Source.ToString(), ex);
        }
    }

    private Task<VaultLease> AcquireAsync(CancellationToken cancellationToken) => Source.Kind == VaultCredentialKind.DynamicRole
        ? _client.CheckoutAsync(Source.Name, Source.Ttl, _options.Lease, cancellationToken)
        : _client.CheckoutAccountAsync(Source.Name, Source.Ttl, Source.Wait, _options.Lease, cancellationToken);

    /// <summary>
    /// Waits until the lease's planned replacement time (<see cref="VaultLease.ReplaceAt"/>, known
    /// from its max end at issue), takes a new one, switches to it, and retires the old one after the
    /// overlap. A lease whose renewal failed for good is replaced at once.
    /// <para>
    /// The lease's times are the server's clock; they are planned on this process's clock as
    /// offsets from when the lease arrived (<paramref name="skew"/>), so a client clock that runs
    /// ahead of the server's does not replace a lease as soon as it arrives, nor retire the old one
    /// before the overlap.
    /// </para>
    /// </summary>
    private async Task LeaseLoopAsync(VaultLease lease, TimeSpan skew, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            // Not learnt from the renewal that reaches the max TTL: on a busy machine that renewal runs
            // late, and the replacement then landed at the lease's end, after the old user was dropped.
            var replaceAt = lease.ReplaceAt + skew;
            if (replaceAt > _time.GetUtcNow())
            {
                await WhenCancelledAsync(replaceAt, lease.Ending, stop).ConfigureAwait(false);
            }
            // Renewal ending early is news only when it failed (the lease ends at ExpiresAt, or is gone
            // already); reaching the max TTL changes nothing about the plan.
            if (replaceAt > _time.GetUtcNow() && lease.RenewalError is null && !lease.Expired.IsCancellationRequested)
            {
                await WhenCancelledAsync(replaceAt, lease.Expired, stop).ConfigureAwait(false);
            }
            var replacement = await RetryAsync(AcquireAsync, stop).ConfigureAwait(false);
            var replacementSkew = SkewOf(replacement);
            lock (_lock)
            {
                _lease = replacement;
                _retiring.Add(lease);
            }
            Publish(replacement.Credential, version: null);
            _ = RetireAsync(lease, skew, stop);
            lease = replacement;
            skew = replacementSkew;
        }
    }

    /// <summary>This process's clock minus the server's, as seen when <paramref name="lease"/> arrived.</summary>
    private TimeSpan SkewOf(VaultLease lease) => _time.GetUtcNow() - lease.IssuedAt;

    private async Task RetireAsync(VaultLease lease, TimeSpan skew, CancellationToken stop)
    {
        var now = _time.GetUtcNow();
        var end = lease.ExpiresAt + skew;
        try
        {
            await _time.UntilAsync(end - now < _options.Overlap ? end : now + _options.Overlap, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return; // DisposeAsync revokes what is still retiring.
        }
        lock (_lock)
        {
            if (!_retiring.Remove(lease))
            {
                return;
            }
        }
        await lease.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Watches the target and re-reads its credential on every change. Each watch lasts at most
    /// <see cref="VaultCredentialProviderOptions.RefreshInterval"/>; its first message carries the
    /// current version, so a reconnect also catches a change missed while disconnected.
    /// </summary>
    private async Task WatchTargetLoopAsync(ulong version, CancellationToken stop)
    {
        var delay = _options.RetryDelay;
        while (!stop.IsCancellationRequested)
        {
            using var round = CancellationTokenSource.CreateLinkedTokenSource(stop);
            round.CancelAfter(_options.RefreshInterval);
            try
            {
                await foreach (var change in _client.WatchTargetAsync(Source.Name, round.Token).ConfigureAwait(false))
                {
                    if (change.Version != version || !string.Equals(change.Username, Current?.Username, StringComparison.Ordinal))
                    {
                        var credential = await _client.GetTargetCredentialAsync(Source.Name, stop).ConfigureAwait(false);
                        version = credential.Version;
                        Publish(new VaultCredential(credential.Username, credential.Password), credential.Version);
                    }
                    delay = _options.RetryDelay;
                }
            }
            catch (RpcException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (round.IsCancellationRequested && !stop.IsCancellationRequested
                && ex is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
            {
                // The watch's time is up: open a new one.
            }
            catch (RpcException ex)
            {
                ClientLog.CredentialRefreshFailed(_logger, Source.ToString(), ex.StatusCode, ex.Status.Detail, delay);
                await Task.Delay(delay, stop).ConfigureAwait(false);
                delay = Next(delay);
            }
        }
    }

    private async Task<T> RetryAsync<T>(Func<CancellationToken, Task<T>> action, CancellationToken stop)
    {
        var delay = _options.RetryDelay;
        while (true)
        {
            try
            {
                return await action(stop).ConfigureAwait(false);
            }
            catch (RpcException ex) when (!stop.IsCancellationRequested)
            {
                ClientLog.CredentialRefreshFailed(_logger, Source.ToString(), ex.StatusCode, ex.Status.Detail, delay);
                await Task.Delay(delay, stop).ConfigureAwait(false);
                delay = Next(delay);
            }
        }
    }

    private TimeSpan Next(TimeSpan delay) => delay * 2 < _options.MaxRetryDelay ? delay * 2 : _options.MaxRetryDelay;

    private void Publish(VaultCredential credential, ulong? version)
    {
        lock (_lock)
        {
            var old = _snapshot;
            if (old is not null && old.Current == credential)
            {
                return;
            }
            var previous = old is null ? null
                : string.Equals(old.Current.Username, credential.Username, StringComparison.Ordinal) ? old.Previous
                : old.Current;
            _snapshot = new Snapshot(credential, previous);
            if (old is null || !string.Equals(old.Current.Username, credential.Username, StringComparison.Ordinal))
            {
                ClientLog.CredentialSwitched(_logger, Source.ToString(), credential.Username);
            }
            else
            {
                ClientLog.CredentialPasswordChanged(_logger, Source.ToString(), credential.Username, version ?? 0);
            }
        }
        try
        {
            Changed?.Invoke(this, credential);
        }
        catch (Exception ex)
        {
            // A subscriber's bug must not stop the refresh loop.
            ClientLog.CredentialHandlerFailed(_logger, Source.ToString(), ex);
        }
    }

    /// <summary>Waits until <paramref name="token"/> fires or the clock reads <paramref name="until"/>; throws when <paramref name="stop"/> fires.</summary>
    private async Task WhenCancelledAsync(DateTimeOffset until, CancellationToken token, CancellationToken stop)
    {
        using var both = CancellationTokenSource.CreateLinkedTokenSource(token, stop);
        try
        {
            await _time.UntilAsync(until, both.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!stop.IsCancellationRequested)
        {
            // The awaited token fired.
        }
    }

    /// <summary>The credential in use and the one before it (a different user name), swapped as one.</summary>
    private sealed record Snapshot(VaultCredential Current, VaultCredential? Previous);
}
