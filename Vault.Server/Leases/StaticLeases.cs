using Microsoft.Extensions.Logging;
using Vault.Server.Auth;
using Vault.Server.Idempotency;
using Vault.Server.Rotation;
using Vault.Server.Storage;

namespace Vault.Server.Leases;

/// <summary>
/// Static leases: the current credential of a rotation target, shared by every holder, handed
/// out under a lease that records which token holds it and until when. The password changes on
/// the target's own schedule, not when a lease ends, so ending one only deletes its record.
/// </summary>
public sealed class StaticLeases(LeaseStore leases, TargetManager targets, TimeProvider clock, ILogger<StaticLeases> logger)
{
    /// <summary>The start of every static lease id: <c>static/&lt;target&gt;/&lt;24 hex digits&gt;</c>.</summary>
    public const string Prefix = "static/";

    /// <summary>Hands <paramref name="caller"/> the target's current credential under a new lease, so who holds it and until when is on record.</summary>
    /// <exception cref="ValidationException">The target name or TTL is invalid; nothing is written.</exception>
    /// <exception cref="NotFoundException">No such target.</exception>
    /// <exception cref="PreconditionException">The target has no password yet.</exception>
    public async Task<(string LeaseId, LeaseRecord Lease, TargetCredentialValue Credential)> LeaseAsync(string targetName, TimeSpan? ttl, CallerContext caller, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(targetName, "target");
        var lifetime = ttl ?? LeaseTtls.DefaultTtl;
        if (lifetime < TimeSpan.FromSeconds(1))
        {
            throw new ValidationException("ttl", "must be at least 1 s");
        }
        if (lifetime > LeaseTtls.DefaultMaxTtl)
        {
            throw new ValidationException("ttl", $"is over the max TTL of a static lease ({LeaseTtls.DefaultMaxTtl})");
        }
        if (leases.AnsweredBefore(LeaseJson.Default.ValueTupleStringLeaseRecord, out (string LeaseId, LeaseRecord Lease) prior))
        {
            // The client's repeat of a keyed lease: the lease it was given, with the password as it
            // is now (the target may have rotated since: an old one would be dead).
            leases.RequireStillActive(prior.LeaseId);
            return (prior.LeaseId, prior.Lease, targets.Credential(prior.Lease.Target));
        }
        var credential = targets.Credential(targetName);
        var now = clock.GetUtcNow();
        var leaseId = LeaseStore.NewId(Prefix, targetName);
        var lease = new LeaseRecord
        {
            Role = targetName,
            Target = targetName,
            Username = credential.Username,
            TokenAccessor = caller.Accessor,
            IssuedAtUnixMs = now.ToUnixTimeMilliseconds(),
            ExpiresAtUnixMs = (now + lifetime).ToUnixTimeMilliseconds(),
            MaxExpiresAtUnixMs = (now + LeaseTtls.DefaultMaxTtl).ToUnixTimeMilliseconds(),
            State = LeaseStates.Active,
        };
        // The answer recorded for a keyed repeat is the lease, never the password (see above).
        (string LeaseId, LeaseRecord Lease) made = await leases.WriteAsync(IdempotentCall.Once(tx =>
        {
            // Deleted while we read it: no lease on a target that is gone.
            if (tx.Get<TargetRecord>(Collections.RotationTargets, targetName) is null)
            {
                throw new NotFoundException($"no target named '{targetName}'");
            }
            leases.Save(tx, leaseId, lease);
            return (leaseId, lease);
        }, LeaseJson.Default.ValueTupleStringLeaseRecord), cancellationToken);
        if (made.LeaseId != leaseId)
        {
            return (made.LeaseId, made.Lease, targets.Credential(targetName));
        }
        LeaseLog.StaticIssued(logger, leaseId, credential.Username, targetName, DateTimeOffset.FromUnixTimeMilliseconds(lease.ExpiresAtUnixMs));
        return (leaseId, lease, credential);
    }

    /// <summary>A renewal's step when the caller names none: a static lease has no role to name one.</summary>
    internal static TimeSpan? RenewalStep() => LeaseTtls.DefaultTtl;

    /// <summary>Ends the lease by deleting its record: the password is the target's and changes on its own schedule.</summary>
    internal async Task<LeaseRecord> EndAsync(string leaseId, LeaseRecord lease, string why, CancellationToken cancellationToken)
    {
        await leases.DeleteAsync(leaseId, cancellationToken);
        LeaseLog.StaticEnded(logger, leaseId, why);
        lease.State = LeaseStates.Revoked;
        return lease;
    }
}
