using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Vault.Server.Auth;
using Vault.Server.Idempotency;
using Vault.Server.Crypto;
using Vault.Server.Rotation;
using Vault.Server.Storage;

namespace Vault.Server.Leases;

/// <summary>
/// Exclusive check-out: a set of rotation targets, each lent to one holder at a time under a
/// lease. Ending the lease (check-in, expiry, the holder's token dying) rotates the account's
/// password — set and verified like any rotation — before the account is lent again, so the
/// holder's copy is dead. Callers that find no free account fail at once or queue, first come
/// first served, up to the wait they chose.
/// </summary>
public sealed class CheckoutSets(
    IVaultStore store,
    SecurityBarrier barrier,
    LeaseStore leases,
    TargetManager targets,
    RotationEngine engine,
    TimeProvider clock,
    ILogger<CheckoutSets> logger,
    Cluster.NodeRole role)
{
    /// <summary>The start of every check-out lease id: <c>checkout/&lt;set&gt;/&lt;24 hex digits&gt;</c>.</summary>
    public const string Prefix = "checkout/";
    private readonly ConcurrentDictionary<string, SetGate> _gates = Gates(role);

    /// <summary>
    /// Which accounts are lent, built from the stored leases at a set's first check-out and kept
    /// by this node's check-outs and check-ins — which only the active node makes: a node that
    /// becomes active builds them again from what the previous one stored.
    /// </summary>
    private static ConcurrentDictionary<string, SetGate> Gates(Cluster.NodeRole role)
    {
        var gates = new ConcurrentDictionary<string, SetGate>(StringComparer.Ordinal);
        role.ActiveChanged += active =>
        {
            if (active)
            {
                gates.Clear();
            }
        };
        return gates;
    }

    /// <summary>Whether the set exists (unverified): decides whether a put needs create or update.</summary>
    public bool Exists(string name) => store.Get<CheckoutSetRecord>(Collections.CheckoutSets, name) is not null;

    /// <summary>
    /// Creates or replaces a set. Each account must be a single-user target with no schedule (its
    /// password changes only at check-in) and lent by no other set (one holder at a time).
    /// </summary>
    /// <exception cref="ValidationException">A field is invalid; nothing is written.</exception>
    public async Task<CheckoutSetRecord> PutAsync(string name, IReadOnlyList<string> targetNames, TimeSpan? defaultTtl, TimeSpan? maxTtl, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(name, "set.name");
        if (targetNames.Count is 0 or > 256)
        {
            throw new ValidationException("set.targets", "must list 1 to 256 rotation targets");
        }
        for (var i = 0; i < targetNames.Count; i++)
        {
            var field = $"set.targets[{i}]";
            PolicyStore.ValidateName(targetNames[i], field);
            var target = targets.TryGet(targetNames[i]) ?? throw new ValidationException(field, $"no target named '{targetNames[i]}'");
            if (target.Alternating || target.ManagesAdminSecret)
            {
                throw new ValidationException(field, "a lent account must be a single-user target that is not an admin credential");
            }
            if (!TargetManager.Schedule(target).IsManualOnly)
            {
                // A scheduled rotation would change the password under its holder.
                throw new ValidationException(field, "a lent account rotates at each check-in; give its target no schedule");
            }
        }
        if (targetNames.Distinct(StringComparer.Ordinal).Count() != targetNames.Count)
        {
            throw new ValidationException("set.targets", "lists a target twice");
        }
        foreach (var (other, otherSet) in store.List<CheckoutSetRecord>(Collections.CheckoutSets, ""))
        {
            // One lender per account: two sets would lend it to two holders.
            if (other != name && otherSet.Targets.FirstOrDefault(t => targetNames.Contains(t, StringComparer.Ordinal)) is { } shared)
            {
                throw new ValidationException("set.targets", $"target '{shared}' is already lent by set '{other}'");
            }
        }
        var (ttl, max) = LeaseTtls.Validate(defaultTtl, maxTtl, "set");
        var record = new CheckoutSetRecord { Targets = [.. targetNames], DefaultTtlSeconds = (long)ttl.TotalSeconds, MaxTtlSeconds = (long)max.TotalSeconds };
        record.Seal = RecordSeal.Compute(Hmac, Collections.CheckoutSets, name, record.Canonical());
        await store.WriteAsync(tx =>
        {
            tx.Put(Collections.CheckoutSets, name, record);
            return true;
        }, cancellationToken);
        // The gate (who is waiting, what is lent) survives an update; only its list of accounts changes.
        if (_gates.TryGetValue(name, out var gate))
        {
            gate.SetTargets(record.Targets);
        }
        return record;
    }

    /// <summary>The set, verified: its list of accounts decides whose password is handed out.</summary>
    /// <exception cref="NotFoundException">No such set.</exception>
    public CheckoutSetRecord Get(string name)
    {
        PolicyStore.ValidateName(name, "set");
        var record = store.Get<CheckoutSetRecord>(Collections.CheckoutSets, name) ?? throw new NotFoundException($"no check-out set named '{name}'");
        RecordSeal.Verify(Hmac, Collections.CheckoutSets, name, record.Canonical(), record.Seal);
        return record;
    }

    /// <summary>The set that lends <paramref name="target"/>, or null.</summary>
    public string? SetOf(string target) =>
        store.List<CheckoutSetRecord>(Collections.CheckoutSets, "").FirstOrDefault(s => s.Value.Targets.Contains(target, StringComparer.Ordinal)).Key;

    /// <summary>Whether <paramref name="target"/>'s account is lent right now.</summary>
    public bool IsLent(string target) => leases.LoadAll(Prefix).Any(l => l.Lease.Target == target);

    /// <summary>The names of every set.</summary>
    /// <summary>Callers waiting for an account of each set that has had a check-out since the start (for metrics).</summary>
    public IReadOnlyList<(string Set, int Waiting)> Waiters() => [.. _gates.Select(g => (g.Key, g.Value.Waiting))];

    public IReadOnlyList<string> List() => [.. store.List<CheckoutSetRecord>(Collections.CheckoutSets, "").Select(r => r.Key)];

    /// <summary>Targets of the set lent right now (their lease is live or still checking in).</summary>
    public IReadOnlyList<string> Lent(string set) => [.. leases.LoadAll($"{Prefix}{set}/").Select(l => l.Lease.Target).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];

    /// <summary>Deletes a set none of whose accounts is lent: a lent account goes back to its set at check-in.</summary>
    /// <exception cref="PreconditionException">An account of the set is lent.</exception>
    public async Task DeleteAsync(string name, CancellationToken cancellationToken)
    {
        Get(name);
        await store.WriteAsync(tx =>
        {
            if (LeaseStore.AnyUnder(tx, $"{Prefix}{name}/"))
            {
                throw new PreconditionException($"check-out set '{name}' has accounts lent; check them in first");
            }
            tx.Delete(Collections.CheckoutSets, name);
            return true;
        }, cancellationToken);
        _gates.TryRemove(name, out _);
    }

    /// <summary>Lends a free account of <paramref name="setName"/> to <paramref name="caller"/>.</summary>
    /// <exception cref="RateLimitedException">No account became free in time (RESOURCE_EXHAUSTED).</exception>
    public async Task<(string LeaseId, LeaseRecord Lease, string Password)> CheckoutAsync(string setName, TimeSpan? ttl, TimeSpan? wait, CallerContext caller, CancellationToken cancellationToken)
    {
        if (leases.AnsweredBefore(LeaseJson.Default.ValueTupleStringLeaseRecordString, out var prior))
        {
            // The client's repeat of a keyed check-out: the account it was lent, and no second
            // (while the loan lasts: a check-in rotates the password it was given).
            leases.RequireStillActive(prior.Item1);
            return prior;
        }
        var set = Get(setName);
        var max = TimeSpan.FromSeconds(set.MaxTtlSeconds);
        var lifetime = ttl ?? TimeSpan.FromSeconds(set.DefaultTtlSeconds);
        if (lifetime < TimeSpan.FromSeconds(1) || lifetime > max)
        {
            throw new ValidationException("ttl", lifetime > max ? $"is over the set's max TTL of {max}" : "must be at least 1 s");
        }
        if (wait is { } w && (w < TimeSpan.Zero || w > TimeSpan.FromMinutes(10)))
        {
            throw new ValidationException("wait", "must be between 0 and 10 minutes");
        }
        var gate = _gates.GetOrAdd(setName, _ => new SetGate(set.Targets, Lent(setName)));
        var target = await gate.AcquireAsync(wait ?? TimeSpan.Zero, cancellationToken)
            ?? throw new RateLimitedException(wait is null or { Ticks: 0 }
                ? $"every account of check-out set '{setName}' is lent; try again, or wait for one"
                : $"no account of check-out set '{setName}' came free within {wait}");
        try
        {
            TargetCredentialValue? credential = null;
            await engine.ExclusiveAsync(target, () =>
            {
                var record = targets.Get(target);
                if (record.Pending is not null || record.NeedsAttention || record.Drifted)
                {
                    throw new UnavailableException($"account '{target}' of set '{setName}' is not ready to lend (mid-rotation, drifted or needing attention)");
                }
                credential = targets.Credential(target);
                return Task.CompletedTask;
            }, cancellationToken);
            var now = clock.GetUtcNow();
            var leaseId = LeaseStore.NewId(Prefix, setName);
            var lease = new LeaseRecord
            {
                Role = setName,
                Target = target,
                Username = credential!.Username,
                TokenAccessor = caller.Accessor,
                IssuedAtUnixMs = now.ToUnixTimeMilliseconds(),
                ExpiresAtUnixMs = (now + lifetime).ToUnixTimeMilliseconds(),
                MaxExpiresAtUnixMs = (now + max).ToUnixTimeMilliseconds(),
            };
            (string LeaseId, LeaseRecord Lease, string Password) lent = await leases.WriteAsync(IdempotentCall.Once(tx =>
            {
                leases.Save(tx, leaseId, lease);
                return (leaseId, lease, credential.Password);
            }, LeaseJson.Default.ValueTupleStringLeaseRecordString), cancellationToken);
            if (lent.LeaseId != leaseId)
            {
                // A repeat of this keyed call, sent while it ran, was lent an account first.
                gate.Release(target);
                return lent;
            }
            LeaseLog.Issued(logger, leaseId, credential.Username, target, DateTimeOffset.FromUnixTimeMilliseconds(lease.ExpiresAtUnixMs));
            return lent;
        }
        catch
        {
            gate.Release(target);
            throw;
        }
    }

    /// <summary>A renewal's step when the caller names none: the set's default TTL as stored now (null when the set is gone).</summary>
    /// <exception cref="DataIntegrityException">The set's record was altered outside the vault (its seal does not match).</exception>
    internal TimeSpan? RenewalStep(IStoreReader reader, LeaseRecord lease)
    {
        if (reader.Get<CheckoutSetRecord>(Collections.CheckoutSets, lease.Role) is not { } set)
        {
            return null;
        }
        RecordSeal.Verify(Hmac, Collections.CheckoutSets, lease.Role, set.Canonical(), set.Seal);
        return TimeSpan.FromSeconds(set.DefaultTtlSeconds);
    }

    /// <summary>Rotates a returned account; only once that is verified does the lease end and the account go back to its set.</summary>
    internal async Task<LeaseRecord> CheckInAsync(string leaseId, LeaseRecord lease, string why, CancellationToken cancellationToken)
    {
        var result = await engine.RotateAsync(lease.Target, RotationTriggers.CheckIn, cancellationToken);
        if (result?.Outcome is not (RotationOutcomes.Succeeded or RotationOutcomes.Recovered))
        {
            throw new PreconditionException($"the account's password could not be rotated at check-in: {result?.Reason ?? "the target did not rotate"}");
        }
        // Only the call that ended the lease returns the account: a second check-in must not lend it twice.
        if (await leases.DeleteAsync(leaseId, cancellationToken))
        {
            LeaseLog.Revoked(logger, leaseId, lease.Username, why);
            if (_gates.TryGetValue(lease.Role, out var gate))
            {
                gate.Release(lease.Target);
            }
        }
        lease.State = LeaseStates.Revoked;
        return lease;
    }

    private byte[] Hmac(string purpose, byte[] value) => barrier.Hmac(purpose, value);
}
