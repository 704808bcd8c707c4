using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Vault.Rotators;
using Vault.Server.Auth;
using Vault.Server.Idempotency;

namespace Vault.Server.Leases;

/// <summary>
/// What happens to every lease whatever its kind: renewal up to its max, revocation on request or
/// by prefix, and the reaper's pass that ends expired leases, leases whose token died and
/// abandoned creations, and retries failed ends. One place, so the rules (who may renew what
/// state, one end at a time per lease, backoff after a failure) cannot drift apart between
/// kinds; each kind says only what its end does (<see cref="DynamicLeases"/> drops a user,
/// <see cref="CheckoutSets"/> rotates the lent account, <see cref="StaticLeases"/> deletes the record).
/// </summary>
public sealed class LeaseLifecycle(
    LeaseStore leases,
    DynamicLeases dynamic,
    CheckoutSets sets,
    StaticLeases statics,
    TokenManager tokens,
    Usage.UsageTracker usage,
    TimeProvider clock,
    Microsoft.Extensions.Options.IOptions<LeaseOptions> options,
    ILogger<LeaseLifecycle> logger) : IReaperPass
{
    private readonly ConcurrentDictionary<string, bool> _revoking = new(StringComparer.Ordinal);

    /// <summary>Extends an active lease to now + <paramref name="increment"/> (default: its role's or set's TTL), never past its max.</summary>
    /// <exception cref="NotFoundException">No such lease.</exception>
    /// <exception cref="PreconditionException">The lease has ended (expired, revoking, irrevocable) or is still being created.</exception>
    public async Task<LeaseRecord> RenewAsync(string leaseId, TimeSpan? increment, CancellationToken cancellationToken)
    {
        LeaseStore.ValidateLeaseId(leaseId);
        if (increment is { } inc && inc < TimeSpan.FromSeconds(1))
        {
            throw new ValidationException("increment", "must be at least 1 s");
        }
        // A keyed client's repeat is given the expiry it was given, and moves it no further.
        var renewed = await leases.WriteAsync(IdempotentCall.Once(tx =>
        {
            var lease = leases.Load(tx, leaseId) ?? throw new NotFoundException($"no lease '{leaseId}'");
            var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
            if (lease.State != LeaseStates.Active || lease.ExpiresAtUnixMs <= now)
            {
                throw new PreconditionException($"lease '{leaseId}' has ended ({(lease.State == LeaseStates.Active ? "expired" : lease.State)})");
            }
            // The role's or set's default is read (and its seal checked) only when it is used.
            var step = increment ?? (leaseId.StartsWith(CheckoutSets.Prefix, StringComparison.Ordinal)
                ? sets.RenewalStep(tx, lease)
                : leaseId.StartsWith(StaticLeases.Prefix, StringComparison.Ordinal)
                    ? StaticLeases.RenewalStep()
                    : dynamic.RenewalStep(tx, lease)) ?? LeaseTtls.DefaultTtl;
            lease.ExpiresAtUnixMs = Math.Min(now + (long)step.TotalMilliseconds, lease.MaxExpiresAtUnixMs);
            leases.Save(tx, leaseId, lease);
            return lease;
        }, LeaseJson.Default.LeaseRecord), cancellationToken);
        usage.Used(Usage.UsageKind.LeaseRenewal, leaseId);
        return renewed;
    }

    /// <summary>Ends a lease now: drops its user, rotates its account or deletes it, or marks it for retry when that fails.</summary>
    /// <returns>The lease as it ended: <see cref="LeaseStates.Revoked"/>, or still revoking / irrevocable.</returns>
    /// <exception cref="NotFoundException">No such lease.</exception>
    /// <exception cref="PreconditionException">The lease is still being created (its user may not exist yet).</exception>
    public async Task<LeaseRecord> RevokeAsync(string leaseId, string why, CancellationToken cancellationToken)
    {
        LeaseStore.ValidateLeaseId(leaseId);
        var found = leases.Load(leaseId);
        if (IdempotentCall.Current is not null)
        {
            // A keyed revoke records, before it acts, the lease as it will end: ending is safe to
            // repeat, but a lease it ended may be gone (a check-out's or a static one), and a repeat
            // must hear that it ended rather than NOT_FOUND.
            if (found is null && leases.AnsweredBefore(LeaseJson.Default.LeaseRecord, out var ended))
            {
                return ended;
            }
            if (found is { State: not LeaseStates.Creating } live)
            {
                await leases.WriteAsync(IdempotentCall.Once(_ => Ended(live), LeaseJson.Default.LeaseRecord), cancellationToken);
            }
        }
        var lease = found ?? throw new NotFoundException($"no lease '{leaseId}'");
        if (lease.State == LeaseStates.Creating)
        {
            throw new PreconditionException($"lease '{leaseId}' is still being created; try again in a moment");
        }
        return await TryRevokeAsync(leaseId, l => l.State is LeaseStates.Active or LeaseStates.Revoking or LeaseStates.Irrevocable ? why : null, cancellationToken)
            ?? leases.Load(leaseId) ?? lease;
    }

    /// <summary>The lease as a revocation that ends it leaves it (what a keyed repeat hears once it is gone).</summary>
    private static LeaseRecord Ended(LeaseRecord lease) => new()
    {
        Role = lease.Role,
        Target = lease.Target,
        Username = lease.Username,
        TokenAccessor = lease.TokenAccessor,
        IssuedAtUnixMs = lease.IssuedAtUnixMs,
        ExpiresAtUnixMs = lease.ExpiresAtUnixMs,
        MaxExpiresAtUnixMs = lease.MaxExpiresAtUnixMs,
        State = LeaseStates.Revoked,
    };

    /// <summary>Ends every active or revoking lease under <paramref name="prefix"/> (an admin's clean-up of a role, a set or a target).</summary>
    /// <returns>How many leases this call ended or marked for retry.</returns>
    public async Task<int> RevokePrefixAsync(string prefix, CancellationToken cancellationToken)
    {
        var count = 0;
        foreach (var (id, lease) in leases.List(prefix))
        {
            if (lease.State is LeaseStates.Active or LeaseStates.Revoking
                && await TryRevokeAsync(id, l => l.State is LeaseStates.Active or LeaseStates.Revoking ? "revoked by prefix" : null, cancellationToken) is not null)
            {
                count++;
            }
        }
        return count;
    }

    /// <summary>
    /// One reaper pass: ends expired leases and leases whose token is gone, retries due
    /// revocations. It looks at the leases the schedule says are due and at those of tokens that
    /// died (<see cref="LeaseSchedule"/>), not at every lease; each is decided again on its verified
    /// record, then given its next time from the record as it stands.
    /// </summary>
    public async Task ReapAsync(CancellationToken cancellationToken)
    {
        var schedule = leases.Schedule;
        schedule.CreatingGraceMs = (long)dynamic.CreatingTimeout.TotalMilliseconds;
        if (!schedule.Loaded)
        {
            // Once after an unseal or a promotion: every lease, read without its seal (a cheap
            // first look; nothing is acted on but a verified record).
            schedule.Load(leases.Unverified(), CheckAt);
        }
        var candidates = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (id, version) in schedule.TakeDue(clock.GetUtcNow().ToUnixTimeMilliseconds()))
        {
            candidates[id] = version;
        }
        foreach (var accessor in schedule.Accessors())
        {
            if (!tokens.IsLive(accessor))
            {
                foreach (var (id, version) in schedule.HeldBy(accessor))
                {
                    candidates.TryAdd(id, version);
                }
            }
        }
        var finished = false;
        try
        {
            var dropping = new List<(string Id, long Version, string Target)>();
            foreach (var (id, version) in candidates)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!id.StartsWith(DynamicLeases.Prefix, StringComparison.Ordinal))
                {
                    await ReapOneAsync(id, cancellationToken);
                }
                else if (leases.Peek(id) is { } stored)
                {
                    // Dropped below with the other users of its target that are due now (the
                    // unverified record only groups it; each is claimed and decided on its
                    // verified record just before its batch).
                    dropping.Add((id, version, stored.Target));
                    continue;
                }
                Reschedule(id, version);
            }
            foreach (var target in dropping.GroupBy(d => d.Target, StringComparer.Ordinal))
            {
                foreach (var chunk in target.Chunk(DropBatch))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var batch = new List<(string Id, long Version, LeaseRecord Lease, string Why)>();
                    foreach (var (id, version, _) in chunk)
                    {
                        if (Claim(id) is { } due)
                        {
                            batch.Add((id, version, due.Lease, due.Why));
                        }
                        else
                        {
                            Reschedule(id, version);
                        }
                    }
                    // Releases the guards Claim took, whatever happens.
                    await DropTogetherAsync(target.Key, batch, cancellationToken);
                }
            }
            finished = true;
        }
        finally
        {
            if (!finished)
            {
                // Stopped mid-pass: the leases taken and not yet rescheduled are found again by a
                // schedule built afresh.
                schedule.Invalidate();
            }
        }
    }

    /// <summary>How soon a lease looked at and left, though due, is looked at again (at most the reaper's interval).</summary>
    private static readonly TimeSpan Recheck = TimeSpan.FromSeconds(5);

    /// <summary>How many users of one target the reaper drops in one round of statements.</summary>
    internal const int DropBatch = 100;

    /// <summary>Ends one lease if it is due now (decided again on the lease as it is, under the revocation guard).</summary>
    private async Task ReapOneAsync(string id, CancellationToken cancellationToken)
    {
        try
        {
            await TryRevokeAsync(id, DueReason, cancellationToken);
        }
        catch (DataIntegrityException)
        {
            // Altered outside the vault: shown by Lookup as DATA_LOSS, never acted on.
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // One bad lease (a damaged record, an odd failure) must not stop the pass.
            LeaseLog.ReaperFailed(logger, ex);
        }
    }

    /// <summary>
    /// Takes the revocation guard of a lease that is due now, with its verified record and why;
    /// null (and no guard held) when it is not due, is being ended by another call, or cannot be read.
    /// </summary>
    private (LeaseRecord Lease, string Why)? Claim(string id)
    {
        if (!_revoking.TryAdd(id, true))
        {
            return null;
        }
        try
        {
            if (leases.Load(id) is { } lease && DueReason(lease) is { } why)
            {
                return (lease, why);
            }
        }
        catch (DataIntegrityException)
        {
            // Altered outside the vault: never acted on.
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LeaseLog.ReaperFailed(logger, ex);
        }
        _revoking.TryRemove(id, out _);
        return null;
    }

    /// <summary>
    /// Ends due dynamic leases of one target together: their users dropped in one round of
    /// statements, their leases deleted in one commit; each one refused is recorded for a retry as
    /// a lease ended alone would be. Releases the guards <see cref="Claim"/> took.
    /// </summary>
    private async Task DropTogetherAsync(string target, List<(string Id, long Version, LeaseRecord Lease, string Why)> batch, CancellationToken cancellationToken)
    {
        try
        {
            if (batch.Count == 0)
            {
                return;
            }
            if (batch.Exists(d => d.Lease.Target != target))
            {
                // Its verified record names another target than the stored one read to group it:
                // never dropped on the wrong system. Left for the next pass.
                throw new DataIntegrityException($"lease records of target '{target}' changed while they were grouped");
            }
            IReadOnlyDictionary<string, string> failures;
            try
            {
                failures = await dynamic.DropUsersAsync(target, [.. batch.Select(d => (d.Id, d.Lease, d.Why))], cancellationToken);
            }
            catch (Exception ex) when (ex is RotatorException or ValidationException or PreconditionException or KeyNotFoundException or NotFoundException or ArgumentException)
            {
                failures = batch.ToDictionary(d => d.Id, _ => ex.Message, StringComparer.Ordinal);
            }
            foreach (var (id, _, lease, _) in batch)
            {
                if (failures.TryGetValue(id, out var failure))
                {
                    await leases.RecordRevokeFailureAsync(id, lease, failure, cancellationToken);
                }
            }
        }
        catch (DataIntegrityException)
        {
            // The target's admin secret was altered outside the vault: nothing is acted on.
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A store failure: the leases stay as stored, and come up again.
            LeaseLog.ReaperFailed(logger, ex);
        }
        finally
        {
            foreach (var (id, version, _, _) in batch)
            {
                _revoking.TryRemove(id, out _);
                Reschedule(id, version);
            }
        }
    }

    /// <summary>Gives a lease the reaper looked at its next time, from its record as it reads now.</summary>
    private void Reschedule(string id, long version)
    {
        var lease = leases.Peek(id);
        var at = lease is null ? LeaseSchedule.Never : CheckAt(lease);
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        if (at <= now)
        {
            // Looked at and left as it was (a record that fails its check, one another call is
            // ending, one that fell due during the pass): looked at again shortly, not on every
            // pass the reaper wakes for.
            at = now + (long)Math.Min(options.Value.ReaperInterval.TotalMilliseconds, Recheck.TotalMilliseconds);
        }
        leases.Schedule.Reschedule(id, version, lease, at);
    }

    /// <summary>
    /// When the reaper should wake: <paramref name="latest"/>, or sooner when a lease falls due
    /// before it, but not before <paramref name="earliest"/>; until then a lease noted due sooner
    /// calls <paramref name="dueSooner"/>.
    /// </summary>
    internal DateTimeOffset PlanWake(DateTimeOffset latest, DateTimeOffset earliest, Action dueSooner)
    {
        var schedule = leases.Schedule;
        schedule.DueSooner = dueSooner;
        return DateTimeOffset.FromUnixTimeMilliseconds(schedule.PlanWake(latest.ToUnixTimeMilliseconds(), earliest.ToUnixTimeMilliseconds()));
    }

    /// <summary>The schedule is built afresh on the next pass (after an unseal, or a promotion: another node wrote meanwhile).</summary>
    internal void ScheduleStale() => leases.Schedule.Invalidate();

    /// <summary>When the reaper should look at this lease next (its record as stored).</summary>
    private long CheckAt(LeaseRecord lease) => leases.Schedule.DueAt(lease);

    /// <summary>Why the reaper should end this lease now, or null.</summary>
    private string? DueReason(LeaseRecord lease) => DueReason(lease, tokens.IsLive);

    private string? DueReason(LeaseRecord lease, Func<string, bool> isLive)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        return lease.State switch
        {
            LeaseStates.Active when lease.ExpiresAtUnixMs <= now => "expired",
            LeaseStates.Active when !isLive(lease.TokenAccessor) => "its token was revoked or expired",
            LeaseStates.Revoking when (lease.NextAttemptAtUnixMs ?? 0) <= now => "retrying revocation",
            // Being created when the server died: whatever was made is dropped (only dynamic leases are ever creating).
            LeaseStates.Creating when lease.IssuedAtUnixMs + (long)dynamic.CreatingTimeout.TotalMilliseconds <= now => "its creation never finished",
            _ => null,
        };
    }

    /// <summary>
    /// Ends a lease if <paramref name="reason"/> (given the lease as stored now) says so. One
    /// attempt per lease at a time; a lease already gone is left alone.
    /// </summary>
    /// <returns>The lease as it ended, or null when nothing was done.</returns>
    private async Task<LeaseRecord?> TryRevokeAsync(string leaseId, Func<LeaseRecord, string?> reason, CancellationToken cancellationToken)
    {
        if (!_revoking.TryAdd(leaseId, true))
        {
            return null;
        }
        try
        {
            var lease = leases.Load(leaseId);
            if (lease is null || reason(lease) is not { } why)
            {
                return null;
            }
            string failure;
            try
            {
                if (leaseId.StartsWith(CheckoutSets.Prefix, StringComparison.Ordinal))
                {
                    return await sets.CheckInAsync(leaseId, lease, why, cancellationToken);
                }
                if (leaseId.StartsWith(StaticLeases.Prefix, StringComparison.Ordinal))
                {
                    return await statics.EndAsync(leaseId, lease, why, cancellationToken);
                }
                return await dynamic.DropUserAsync(leaseId, lease, why, cancellationToken);
            }
            catch (Exception ex) when (ex is RotatorException or ValidationException or PreconditionException or KeyNotFoundException or NotFoundException or ArgumentException)
            {
                failure = ex.Message;
            }
            return await leases.RecordRevokeFailureAsync(leaseId, lease, failure, cancellationToken);
        }
        finally
        {
            _revoking.TryRemove(leaseId, out _);
        }
    }
}
