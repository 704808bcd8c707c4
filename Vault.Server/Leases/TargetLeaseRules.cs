using Vault.Server.Rotation;

namespace Vault.Server.Leases;

/// <summary>
/// What leases and check-out sets forbid a target's administration: a target lent by a set stays
/// single-user with no schedule (its password changes only at check-in), a lent target is not
/// rotated by hand, a target with live leases is not moved or deleted (ending them needs the old
/// place), and a target that roles or sets use is not deleted. Called under the target's rotation lock.
/// </summary>
public sealed class TargetLeaseRules(DynamicRoles roles, CheckoutSets sets, LeaseStore leases)
{
    /// <exception cref="PreconditionException">The change would break a lease or a set.</exception>
    public void CheckPut(string name, TargetSpec spec, bool rotateNow, bool moves)
    {
        if (sets.SetOf(name) is { } set
            && (spec.AlternatingUsers || spec.ManagesAdminSecret || spec.Interval is not null || !string.IsNullOrWhiteSpace(spec.Cron)))
        {
            // Its password changes only at check-in; anything else would kill a holder's copy.
            throw new PreconditionException($"target '{name}' is lent by set '{set}': it must stay single-user with no schedule");
        }
        if (rotateNow)
        {
            CheckRotate(name);
        }
        if (moves && HasLeasesOn(name))
        {
            // Leases remember the user, not where it lives: ending them needs the old place.
            throw new PreconditionException($"target '{name}' has live leases; revoke them before moving it");
        }
    }

    /// <exception cref="PreconditionException">The target is checked out.</exception>
    public void CheckRotate(string name)
    {
        if (sets.IsLent(name))
        {
            throw new PreconditionException($"target '{name}' is checked out; it rotates when checked in");
        }
    }

    /// <exception cref="PreconditionException">Roles, a set or live leases use the target.</exception>
    public void CheckDelete(string name)
    {
        if (roles.On(name) is { Count: > 0 } users)
        {
            throw new PreconditionException($"target '{name}' is used by dynamic role(s) {string.Join(", ", users)}; delete them first");
        }
        if (sets.SetOf(name) is { } set)
        {
            throw new PreconditionException($"target '{name}' is lent by check-out set '{set}'; remove it from the set first");
        }
        if (HasLeasesOn(name))
        {
            throw new PreconditionException($"target '{name}' has live leases; revoke them first");
        }
    }

    /// <summary>
    /// Whether leases that need the target to end (dynamic users, lent accounts) are live on it.
    /// Static leases do not count: ending one touches nothing on the target, so a reader cannot
    /// hold off an admin's delete or move with them.
    /// </summary>
    private bool HasLeasesOn(string target) =>
        leases.LoadAll("").Any(l => l.Lease.Target == target && !l.Id.StartsWith(StaticLeases.Prefix, StringComparison.Ordinal));
}
