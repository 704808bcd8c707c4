using Vault.Rotators;
using Vault.Server.Auth;
using Vault.Server.Crypto;
using Vault.Server.Rotation;
using Vault.Server.Storage;

namespace Vault.Server.Leases;

/// <summary>
/// Dynamic roles: which target makes the users, the statements that grant them their rights, and
/// their TTLs. Roles are sealed like policies because their statements run as the target's admin:
/// a role edited in the data file would run what nobody with the right to write roles wrote.
/// </summary>
public sealed class DynamicRoles(IVaultStore store, SecurityBarrier barrier, TargetManager targets, RotatorRegistry rotators)
{
    private const int MaxStatements = 32;
    private const int MaxStatementLength = 4096;

    /// <summary>Whether the role exists (unverified): decides whether a put needs create or update.</summary>
    public bool Exists(string name) => store.Get<DynamicRoleRecord>(Collections.DynamicRoles, name) is not null;

    /// <summary>Creates or replaces a role; its target must be able to make users, so a bad role fails here rather than at its first issue.</summary>
    /// <exception cref="ValidationException">A field is invalid; nothing is written.</exception>
    public async Task<DynamicRoleRecord> PutAsync(string name, string target, IReadOnlyList<string> statements, TimeSpan? defaultTtl, TimeSpan? maxTtl, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(name, "role.name");
        if (string.IsNullOrEmpty(target))
        {
            throw new ValidationException("role.target", "is required: the rotation target whose connection and admin credential make the users");
        }
        var targetRecord = targets.TryGet(target) ?? throw new ValidationException("role.target", $"no target named '{target}'");
        if (!rotators.TryGet(targetRecord.Kind, out var rotator) || !rotator.SupportsEphemeralUsers)
        {
            throw new ValidationException("role.target", $"a '{targetRecord.Kind}' target cannot make users (postgres and mysql can)");
        }
        if (statements.Count > MaxStatements)
        {
            throw new ValidationException("role.creation_statements", $"must list at most {MaxStatements} statements");
        }
        for (var i = 0; i < statements.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(statements[i]) || statements[i].Length > MaxStatementLength || statements[i].Any(c => char.IsControl(c) && c is not ('\n' or '\t' or '\r')))
            {
                throw new ValidationException($"role.creation_statements[{i}]", $"must be a non-empty statement of at most {MaxStatementLength} characters");
            }
        }
        var (ttl, max) = LeaseTtls.Validate(defaultTtl, maxTtl, "role");
        var record = new DynamicRoleRecord
        {
            Target = target,
            CreationStatements = [.. statements],
            DefaultTtlSeconds = (long)ttl.TotalSeconds,
            MaxTtlSeconds = (long)max.TotalSeconds,
        };
        record.Seal = RecordSeal.Compute(Hmac, Collections.DynamicRoles, name, record.Canonical());
        await store.WriteAsync(tx =>
        {
            tx.Put(Collections.DynamicRoles, name, record);
            return true;
        }, cancellationToken);
        return record;
    }

    /// <summary>The role, verified: its statements are about to run as an admin, or be shown.</summary>
    /// <exception cref="NotFoundException">No such role.</exception>
    /// <exception cref="DataIntegrityException">The role was altered outside the vault.</exception>
    public DynamicRoleRecord Get(string name)
    {
        PolicyStore.ValidateName(name, "role");
        var record = store.Get<DynamicRoleRecord>(Collections.DynamicRoles, name) ?? throw new NotFoundException($"no dynamic role named '{name}'");
        RecordSeal.Verify(Hmac, Collections.DynamicRoles, name, record.Canonical(), record.Seal);
        return record;
    }

    /// <summary>The names of every role.</summary>
    public IReadOnlyList<string> List() => [.. store.List<DynamicRoleRecord>(Collections.DynamicRoles, "").Select(r => r.Key)];

    /// <summary>Roles that make users on <paramref name="target"/>: the target must not be deleted under them.</summary>
    public IReadOnlyList<string> On(string target) =>
        [.. store.List<DynamicRoleRecord>(Collections.DynamicRoles, "").Where(r => r.Value.Target == target).Select(r => r.Key)];

    /// <summary>Deletes a role with no leases: a live lease's user is dropped through its role's target.</summary>
    /// <exception cref="PreconditionException">The role has live leases.</exception>
    public async Task DeleteAsync(string name, CancellationToken cancellationToken)
    {
        Get(name);
        await store.WriteAsync(tx =>
        {
            if (LeaseStore.AnyUnder(tx, $"{DynamicLeases.Prefix}{name}/"))
            {
                throw new PreconditionException($"dynamic role '{name}' has live leases; revoke them first (prefix {DynamicLeases.Prefix}{name}/)");
            }
            tx.Delete(Collections.DynamicRoles, name);
            return true;
        }, cancellationToken);
    }

    /// <summary>The role's default TTL as stored now, read in a renewal's transaction; null when the role is gone.</summary>
    /// <exception cref="DataIntegrityException">The role's record was altered outside the vault (its seal does not match).</exception>
    internal TimeSpan? DefaultTtl(IStoreReader reader, string name)
    {
        if (reader.Get<DynamicRoleRecord>(Collections.DynamicRoles, name) is not { } role)
        {
            return null;
        }
        RecordSeal.Verify(Hmac, Collections.DynamicRoles, name, role.Canonical(), role.Seal);
        return TimeSpan.FromSeconds(role.DefaultTtlSeconds);
    }

    private byte[] Hmac(string purpose, byte[] value) => barrier.Hmac(purpose, value);
}
