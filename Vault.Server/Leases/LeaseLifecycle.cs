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
            foreach (var (id, version) in candidates)
            {
                cancellationToken.ThrowIfCancellationRequested();
                try
                {
                    // Decided again on the lease as it is now (under the revocation guard).
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
                var now = leases.Peek(id);
                schedule.Reschedule(id, version, now, now is null ? LeaseSchedule.Never : CheckAt(now));
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

    /// <summary>The schedule is built afresh on the next pass (after an unseal, or a promotion: another node wrote meanwhile).</summary>
    internal void ScheduleStale() => leases.Schedule.Invalidate();

    /// <summary>When the reaper should look at this lease next (its record as stored).</summary>
    private long CheckAt(LeaseRecord lease) => lease.State == LeaseStates.Creating
        ? lease.IssuedAtUnixMs + (long)dynamic.CreatingTimeout.TotalMilliseconds
        : LeaseSchedule.Earliest(lease);

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
