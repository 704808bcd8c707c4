using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Vault.Server.Crypto;
using Vault.Server.Storage;
using Vault.Server.Storage.Postgres;

namespace Vault.Server.Cluster;

/// <summary>
/// Keeps this node's place among several (<see cref="LeaderLease"/>): every third of a term it
/// renews the term it holds, or — a standby — tries to take the lease once it lapsed. A node
/// competes only while it can serve: unsealed (or the vault not yet initialised, so that one node
/// can take the init). A node that takes a term first brings its image up to the database's last
/// commit, then becomes active; one that is sealed gives its term up; one whose renewal fails
/// steps down once its term would have lapsed, whether or not the database said so.
/// </summary>
public sealed class LeadershipLoop(
    NodeRole role,
    IVaultStore store,
    SecurityBarrier barrier,
    IOptions<ClusterOptions> options,
    IOptions<StorageOptions> storage,
    ILogger<LeadershipLoop> logger) : BackgroundService
{
    private readonly SemaphoreSlim _wake = new(0, 1);
    private LeaderLease? _lease;
    private Npgsql.NpgsqlDataSource? _database;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!role.IsClustered)
        {
            return;
        }
        await Task.Yield();
        var ttl = options.Value.LeaseTtl;
        var every = ttl / 3;
        _database = PostgresConnection.Open(storage.Value.ConnectionFile);
        _lease = new LeaderLease(_database, role.NodeId!, options.Value.AdvertiseAddress!, ttl);
        var renewed = Stopwatch.StartNew();
        barrier.SealStateChanged += OnSealChanged;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    // A round never takes longer than the time between rounds: a database that
                    // does not answer must not keep this node acting on a term it cannot renew.
                    using var round = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                    round.CancelAfter(ttl / 2);
                    await RoundAsync(_lease, renewed, round.Token);
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    ClusterLog.RoundFailed(logger, ex);
                    if (role.HeldTerm is not null && (role.Term is null || renewed.Elapsed >= ttl - every))
                    {
                        // Not renewed for a term: it has lapsed, or will before anything here knows.
                        role.StepDown();
                        ClusterLog.SteppedDown(logger, "its term could not be renewed");
                    }
                }
                try
                {
                    await _wake.WaitAsync(every, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
        finally
        {
            barrier.SealStateChanged -= OnSealChanged;
        }
    }

    private async Task RoundAsync(LeaderLease lease, Stopwatch renewed, CancellationToken cancellationToken)
    {
        // A node whose store refuses writes (a commit's outcome lost) cannot act as the active one.
        var canServe = (!barrier.IsSealed || !barrier.IsInitialized) && store.Failure is null;
        // A term is used for two thirds of it, counted from before the request that took or renewed
        // it: the database counts its expiry from later, so this node stops first.
        var usable = (long)(options.Value.LeaseTtl - (options.Value.LeaseTtl / 3)).TotalMilliseconds;
        var sentAt = Environment.TickCount64;
        if (role.HeldTerm is { } term)
        {
            if (!canServe)
            {
                role.StepDown();
                await lease.ReleaseAsync(term, cancellationToken);
                ClusterLog.SteppedDown(logger, "it was sealed");
            }
            else if (await lease.RenewAsync(term, cancellationToken) is { } next)
            {
                role.Renewed(next, sentAt + usable);
                renewed.Restart();
            }
            else
            {
                role.StepDown();
                ClusterLog.SteppedDown(logger, "its term lapsed or was taken over");
            }
            return;
        }
        if (canServe && await lease.TryAcquireAsync(cancellationToken) is { } won)
        {
            renewed.Restart();
            try
            {
                if (store is PostgresStore postgres)
                {
                    // Every commit of the terms before this one, before the first write with it.
                    await postgres.CatchUpAsync(cancellationToken);
                }
            }
            catch
            {
                // Not caught up: not active. The term goes back, so another may take it at once.
                await lease.ReleaseAsync(won, CancellationToken.None);
                throw;
            }
            // The last commit of the terms before, before this node's own (its first write may follow at once).
            var from = store.CommitIndex;
            role.Promote(won, sentAt + usable);
            ClusterLog.BecameActive(logger, won.Epoch, from);
            return;
        }
        var current = await lease.CurrentAsync(cancellationToken);
        role.SawActive(current is { Live: true } live ? live.Term.Address : null);
    }

    private void OnSealChanged(bool isSealed)
    {
        if (isSealed || role.Term is null)
        {
            try
            {
                _wake.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already woken.
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (role.HeldTerm is { } term && _lease is not null)
        {
            role.StepDown();
            try
            {
                // So a standby need not wait the term out.
                using var quick = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                quick.CancelAfter(TimeSpan.FromSeconds(2));
                await _lease.ReleaseAsync(term, quick.Token);
            }
            catch (Exception ex) when (ex is Npgsql.NpgsqlException or OperationCanceledException or TimeoutException)
            {
                ClusterLog.RoundFailed(logger, ex);
            }
        }
    }

    public override void Dispose()
    {
        base.Dispose();
        _database?.Dispose();
        _wake.Dispose();
    }
}

internal static partial class ClusterLog
{
    [LoggerMessage(1080, LogLevel.Information, "This node is now the active one (epoch {Epoch}), from commit {CommitIndex}")]
    public static partial void BecameActive(ILogger logger, long epoch, long commitIndex);

    [LoggerMessage(1081, LogLevel.Warning, "This node stepped down and is a standby: {Reason}")]
    public static partial void SteppedDown(ILogger logger, string reason);

    [LoggerMessage(1082, LogLevel.Warning, "A leadership round failed; trying again")]
    public static partial void RoundFailed(ILogger logger, Exception error);

    [LoggerMessage(1083, LogLevel.Warning, "Forwarding a call to the active node at {Address} failed: {Reason}")]
    public static partial void ForwardFailed(ILogger logger, string address, string reason);
}
