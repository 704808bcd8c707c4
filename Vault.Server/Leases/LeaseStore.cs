using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Leases;

/// <summary>
/// The one place lease records are read and written, whatever their kind (dynamic user, lent
/// account, static credential): every record is sealed when saved and verified when loaded, so
/// an expiry moved by editing the data file is refused rather than honoured. It also keeps the
/// revocation bookkeeping every kind shares — a failed end is retried with backoff and, after
/// <see cref="LeaseOptions.MaxRevokeAttempts"/>, marked irrevocable for an admin.
/// </summary>
public sealed partial class LeaseStore(
    IVaultStore store,
    SecurityBarrier barrier,
    TimeProvider clock,
    IOptions<LeaseOptions> options,
    Telemetry.Events.SecurityEvents events,
    ILogger<LeaseStore> logger)
{
    /// <summary>A new lease id under <paramref name="prefix"/> (a kind's) and <paramref name="name"/> (its role, set or target), unguessable so ids can be listed by prefix but not predicted.</summary>
    public static string NewId(string prefix, string name) => $"{prefix}{name}/{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12))}";

    /// <summary>Checks a lease id from a caller before it reaches the store or a resource path.</summary>
    /// <exception cref="ValidationException">Not the id of any kind of lease.</exception>
    public static string ValidateLeaseId(string? leaseId)
    {
        if (string.IsNullOrEmpty(leaseId) || leaseId.Length > 200 || !LeaseIdPattern().IsMatch(leaseId))
        {
            throw new ValidationException("lease_id", "must look like dynamic/<role>/<24 hex digits>, checkout/<set>/<24 hex digits> or static/<target>/<24 hex digits>");
        }
        return leaseId;
    }

    /// <summary>Checks a lease id prefix from a caller (empty: every lease); it becomes part of a resource path, so nothing that could climb out of one passes.</summary>
    /// <exception cref="ValidationException">Not the start of a lease id.</exception>
    public static string ValidatePrefix(string? prefix)
    {
        if (string.IsNullOrEmpty(prefix))
        {
            return "";
        }
        if (prefix.Length > 200 || !PrefixPattern().IsMatch(prefix) || prefix.Contains("..", StringComparison.Ordinal) || prefix.Contains("//", StringComparison.Ordinal))
        {
            throw new ValidationException("prefix", "must be the start of a lease id, e.g. dynamic/<role>/");
        }
        return prefix;
    }

    /// <exception cref="NotFoundException">No such lease.</exception>
    /// <exception cref="DataIntegrityException">The record was altered outside the vault.</exception>
    public LeaseRecord Lookup(string leaseId)
    {
        ValidateLeaseId(leaseId);
        return Load(store, leaseId) ?? throw new NotFoundException($"no lease '{leaseId}'");
    }

    /// <summary>The leases under a caller's <paramref name="prefix"/>, leaving out records altered outside the vault (<see cref="Lookup"/> shows those).</summary>
    public IReadOnlyList<(string Id, LeaseRecord Lease)> List(string prefix) => LoadAll(ValidatePrefix(prefix));

    /// <summary>The accessor of the token holding the lease, or null when there is no such lease (the caller then needs the policy).</summary>
    public string? HolderOf(string leaseId)
    {
        ValidateLeaseId(leaseId);
        return store.Get<LeaseRecord>(Collections.Leases, leaseId)?.TokenAccessor;
    }

    /// <summary>Whether any lease, verified or not, is under <paramref name="prefix"/>: a role or set with one must not be deleted.</summary>
    public static bool AnyUnder(IStoreReader reader, string prefix) => reader.List<LeaseRecord>(Collections.Leases, prefix, 1).Count > 0;

    /// <summary>Like <see cref="List"/> for a prefix the vault built (not checked: names may hold what a caller's prefix may not).</summary>
    internal IReadOnlyList<(string Id, LeaseRecord Lease)> LoadAll(string prefix)
    {
        var result = new List<(string, LeaseRecord)>();
        foreach (var (id, lease) in store.List<LeaseRecord>(Collections.Leases, prefix))
        {
            try
            {
                RecordSeal.Verify(Hmac, Collections.Leases, id, lease.Canonical(), lease.Seal);
                result.Add((id, lease));
            }
            catch (DataIntegrityException)
            {
                // Altered outside the vault: shown by Lookup as DATA_LOSS, never acted on.
            }
        }
        return result;
    }

    /// <summary>Every lease, unverified: only for a cheap first look that is decided again on the verified record.</summary>
    internal IEnumerable<KeyValuePair<string, LeaseRecord>> Unverified() => store.Scan<LeaseRecord>(Collections.Leases);

    /// <summary>The lease as stored now, verified, or null when there is none.</summary>
    /// <exception cref="DataIntegrityException">The record was altered outside the vault.</exception>
    public LeaseRecord? Load(string leaseId) => Load(store, leaseId);

    /// <summary>Like <see cref="Load(string)"/>, inside a transaction.</summary>
    public LeaseRecord? Load(IStoreReader reader, string leaseId)
    {
        var lease = reader.Get<LeaseRecord>(Collections.Leases, leaseId);
        if (lease is not null)
        {
            RecordSeal.Verify(Hmac, Collections.Leases, leaseId, lease.Canonical(), lease.Seal);
        }
        return lease;
    }

    /// <summary>Seals and writes the lease inside a transaction.</summary>
    public void Save(IStoreWriter tx, string leaseId, LeaseRecord lease)
    {
        lease.Seal = RecordSeal.Compute(Hmac, Collections.Leases, leaseId, lease.Canonical());
        tx.Put(Collections.Leases, leaseId, lease);
        Noted(leaseId).Note(leaseId, lease);
    }

    // The ids the unit running on this thread (the store's writer) saved or deleted: settled in the
    // schedule once the unit's task completes (WriteAsync).
    [ThreadStatic]
    private static List<string>? t_noted;

    /// <summary>The schedule, with <paramref name="leaseId"/> counted among the running unit's changes.</summary>
    private LeaseSchedule Noted(string leaseId)
    {
        (t_noted ?? throw new InvalidOperationException("a lease is written only inside LeaseStore.WriteAsync: its schedule must hear when the write commits")).Add(leaseId);
        return Schedule;
    }

    /// <summary>When each lease next needs the reaper: noted by every save here, read by the reaper's pass.</summary>
    internal LeaseSchedule Schedule { get; } = new();

    /// <summary>The lease as stored now, unverified (the schedule's view: every decision is made again on the verified record).</summary>
    internal LeaseRecord? Peek(string leaseId) => store.Get<LeaseRecord>(Collections.Leases, leaseId);

    /// <summary>One transaction for a change that reads other records with a lease (a renewal reads its role); use <see cref="Load(IStoreReader, string)"/> and <see cref="Save"/> in it.</summary>
    public async Task<T> WriteAsync<T>(Func<IStoreWriter, T> work, CancellationToken cancellationToken)
    {
        var noted = new List<string>();
        try
        {
            return await store.WriteAsync(tx =>
            {
                t_noted = noted;
                try
                {
                    return work(tx);
                }
                finally
                {
                    t_noted = null;
                }
            }, cancellationToken);
        }
        finally
        {
            // Committed (reads now see it) or failed (nothing of it applied): either way what the
            // store says of these leases can be trusted again.
            Schedule.Settled(noted);
        }
    }

    /// <summary>
    /// Checks that the lease a keyed call's repeat is answered with still lives: a credential whose
    /// lease ended (expired, revoked, checked in and rotated) would be a dead password.
    /// </summary>
    /// <exception cref="PreconditionException">It has ended.</exception>
    public void RequireStillActive(string leaseId)
    {
        var lease = Load(leaseId);
        if (lease is not { State: LeaseStates.Active })
        {
            throw new PreconditionException($"the lease this idempotency key was answered with, '{leaseId}', has ended since{(lease is null ? "" : $" ({lease.State})")}; send a new request with a new key");
        }
    }

    /// <summary>The answer recorded for the current keyed call (<see cref="Idempotency.IdempotentCall.TryPrior{T}"/>), read from the store.</summary>
    public bool AnsweredBefore<T>(System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> answerType, out T prior) =>
        Idempotency.IdempotentCall.TryPrior(store, answerType, out prior);

    /// <summary>Seals and writes the lease in a transaction of its own.</summary>
    public Task SaveAsync(string leaseId, LeaseRecord lease, CancellationToken cancellationToken) =>
        WriteAsync(tx =>
        {
            Save(tx, leaseId, lease);
            return true;
        }, cancellationToken);

    /// <summary>Deletes the lease if it still exists; true when this call deleted it (only then may its account be lent again).</summary>
    public Task<bool> DeleteAsync(string leaseId, CancellationToken cancellationToken) =>
        WriteAsync(tx =>
        {
            if (tx.Get<LeaseRecord>(Collections.Leases, leaseId) is null)
            {
                return false;
            }
            tx.Delete(Collections.Leases, leaseId);
            Noted(leaseId).NoteGone(leaseId);
            return true;
        }, cancellationToken);

    /// <summary>Deletes the leases of <paramref name="leaseIds"/> still stored, in one commit.</summary>
    public Task DeleteAllAsync(IReadOnlyList<string> leaseIds, CancellationToken cancellationToken) =>
        leaseIds.Count == 0 ? Task.CompletedTask : WriteAsync(tx =>
        {
            foreach (var leaseId in leaseIds)
            {
                if (tx.Get<LeaseRecord>(Collections.Leases, leaseId) is not null)
                {
                    tx.Delete(Collections.Leases, leaseId);
                    Noted(leaseId).NoteGone(leaseId);
                }
            }
            return true;
        }, cancellationToken);

    /// <summary>Leaves the lease to the reaper, due now: for an end that may have half happened (a connection that broke while a user was made).</summary>
    public Task MarkRevokingAsync(string leaseId, string reason, CancellationToken cancellationToken) =>
        WriteAsync(tx =>
        {
            if (Load(tx, leaseId) is { } current)
            {
                current.State = LeaseStates.Revoking;
                current.LastError = reason;
                current.NextAttemptAtUnixMs = clock.GetUtcNow().ToUnixTimeMilliseconds();
                Save(tx, leaseId, current);
            }
            return true;
        }, cancellationToken);

    /// <summary>
    /// Records a failed attempt to end the lease: retried after a delay that doubles per failure
    /// (from <see cref="LeaseOptions.RevokeRetryBase"/> up to <see cref="LeaseOptions.RevokeRetryMax"/>),
    /// or marked irrevocable after <see cref="LeaseOptions.MaxRevokeAttempts"/>, so a database
    /// that is down is not hammered and one that never answers ends up in front of an admin.
    /// </summary>
    /// <returns>The lease as recorded, or <paramref name="lease"/> when it was ended by someone else meanwhile.</returns>
    public async Task<LeaseRecord> RecordRevokeFailureAsync(string leaseId, LeaseRecord lease, string failure, CancellationToken cancellationToken)
    {
        var retryBase = options.Value.RevokeRetryBase;
        var recorded = false;
        var result = await WriteAsync(tx =>
        {
            recorded = false;
            // Ended by someone else meanwhile: nothing to record.
            var current = Load(tx, leaseId);
            if (current is null)
            {
                return lease;
            }
            current.RevokeAttempts++;
            current.LastError = failure;
            var delay = TimeSpan.FromTicks((long)Math.Min(retryBase.Ticks * Math.Pow(2, Math.Min(current.RevokeAttempts - 1, 30)), options.Value.RevokeRetryMax.Ticks));
            if (current.RevokeAttempts >= options.Value.MaxRevokeAttempts)
            {
                current.State = LeaseStates.Irrevocable;
                current.NextAttemptAtUnixMs = null;
                LeaseLog.Irrevocable(logger, leaseId, current.RevokeAttempts, current.Username, current.Target, failure);
            }
            else
            {
                current.State = LeaseStates.Revoking;
                current.NextAttemptAtUnixMs = (clock.GetUtcNow() + delay).ToUnixTimeMilliseconds();
                LeaseLog.RevokeFailed(logger, leaseId, current.RevokeAttempts, failure, (long)delay.TotalSeconds);
            }
            Save(tx, leaseId, current);
            recorded = true;
            return current;
        }, cancellationToken);
        if (recorded)
        {
            // The user's name and the target, as the log has them: an admin drops the user by hand.
            events.Publish(result.State == LeaseStates.Irrevocable ? Telemetry.Events.SecurityEventTypes.LeaseIrrevocable : Telemetry.Events.SecurityEventTypes.LeaseRevocationFailed,
                ("lease_id", leaseId), ("username", result.Username), ("target", result.Target), ("reason", failure),
                ("attempts", result.RevokeAttempts.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
        return result;
    }

    private byte[] Hmac(string purpose, byte[] value) => barrier.Hmac(purpose, value);

    [GeneratedRegex("^(dynamic|checkout|static)/[A-Za-z0-9._-]{1,128}/[0-9a-f]{24}$")]
    private static partial Regex LeaseIdPattern();

    [GeneratedRegex("^[A-Za-z0-9._/-]+$")]
    private static partial Regex PrefixPattern();
}
