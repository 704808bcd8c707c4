using System.Security.Cryptography;
using Vault.Server.Auth;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Identity;

/// <summary>What an entity is, as an admin writes it.</summary>
public sealed record EntitySpec(string Name, IReadOnlyList<string> Policies, bool Disabled);

/// <summary>What a group is, as an admin writes it.</summary>
public sealed record GroupSpec(string Name, IReadOnlyList<string> Policies, IReadOnlyList<string> Members);

/// <summary>
/// Entities (one per person, whatever method they log in with) and groups of them that carry
/// policies. A group's members are listed on the group and, in the same write, on each member
/// (<see cref="EntityRecord.Groups"/>), so a token's policies are found with one read per group.
/// Records are verified once per stored version and the result shared.
/// </summary>
public sealed class Identities(IVaultStore store, SecurityBarrier barrier, PolicyStore policies, TimeProvider clock) : IEntityPolicies
{
    public const int MaxMembers = 1000;

    public bool EntityExists(string name) => store.Get<EntityRecord>(Collections.Entities, name) is not null;

    public bool GroupExists(string name) => store.Get<GroupRecord>(Collections.Groups, name) is not null;

    public Task<EntityRecord> PutEntityAsync(EntitySpec spec, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(spec.Name, "entity.name");
        var named = policies.ValidateExisting(spec.Policies, "entity.policies");
        return store.WriteAsync(tx =>
        {
            var existing = RecordSeal.Read<EntityRecord>(tx, Hmac, Collections.Entities, spec.Name, e => e.Canonical(), e => e.Seal);
            var record = new EntityRecord
            {
                EntityId = existing?.EntityId ?? NewId(),
                Policies = named,
                Disabled = spec.Disabled,
                Groups = existing?.Groups ?? [],
                ActiveGrants = existing?.ActiveGrants ?? [],
                CreatedAtUnixMs = existing?.CreatedAtUnixMs ?? clock.GetUtcNow().ToUnixTimeMilliseconds(),
            };
            PutEntity(tx, spec.Name, record);
            return record;
        }, cancellationToken);
    }

    /// <summary>The entity named <paramref name="name"/>, created (with no policies) when there is none yet: a new user's own.</summary>
    internal EntityRecord EnsureEntity(IStoreWriter tx, string name)
    {
        if (RecordSeal.Read<EntityRecord>(tx, Hmac, Collections.Entities, name, e => e.Canonical(), e => e.Seal) is { } existing)
        {
            return existing;
        }
        var record = new EntityRecord { EntityId = NewId(), CreatedAtUnixMs = clock.GetUtcNow().ToUnixTimeMilliseconds() };
        PutEntity(tx, name, record);
        return record;
    }

    /// <summary>The entity named <paramref name="name"/> as <paramref name="reader"/> sees it (verified), or null.</summary>
    internal EntityRecord? EntityIn(IStoreReader reader, string name) => RecordSeal.Read<EntityRecord>(reader, Hmac, Collections.Entities, name, e => e.Canonical(), e => e.Seal);

    public EntityRecord GetEntity(string name)
    {
        PolicyStore.ValidateName(name);
        return TryGetEntity(name) ?? throw new NotFoundException($"no entity named '{name}'");
    }

    public EntityRecord? TryGetEntity(string name) =>
        store.GetDerived<EntityRecord, EntityRecord>(Collections.Entities, name, e => RecordSeal.Verified(Hmac, Collections.Entities, name, e, e.Canonical(), e.Seal));

    public IReadOnlyList<string> ListEntities() => store.List<EntityRecord>(Collections.Entities, "").Select(p => p.Key).ToList();

    /// <summary>Deletes the entity and takes it out of its groups; tokens issued to it stop working (their entity id no longer exists).</summary>
    public Task DeleteEntityAsync(string name, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(name);
        return store.WriteAsync(tx =>
        {
            var entity = RecordSeal.Read<EntityRecord>(tx, Hmac, Collections.Entities, name, e => e.Canonical(), e => e.Seal) ?? throw new NotFoundException($"no entity named '{name}'");
            foreach (var groupName in entity.Groups)
            {
                if (RecordSeal.Read<GroupRecord>(tx, Hmac, Collections.Groups, groupName, g => g.Canonical(), g => g.Seal) is { } group)
                {
                    group.Members = group.Members.Where(m => m != name).ToList();
                    PutGroup(tx, groupName, group);
                }
            }
            tx.Delete(Collections.Entities, name);
            return true;
        }, cancellationToken);
    }

    public Task<GroupRecord> PutGroupAsync(GroupSpec spec, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(spec.Name, "group.name");
        var named = policies.ValidateExisting(spec.Policies, "group.policies");
        if (spec.Members.Count > MaxMembers)
        {
            throw new ValidationException("group.members", $"must list at most {MaxMembers} entities");
        }
        for (var i = 0; i < spec.Members.Count; i++)
        {
            PolicyStore.ValidateName(spec.Members[i], $"group.members[{i}]");
        }
        var members = spec.Members.Distinct(StringComparer.Ordinal).ToList();
        return store.WriteAsync(tx =>
        {
            var before = RecordSeal.Read<GroupRecord>(tx, Hmac, Collections.Groups, spec.Name, g => g.Canonical(), g => g.Seal)?.Members ?? [];
            var loaded = new Dictionary<string, EntityRecord>(StringComparer.Ordinal);
            for (var i = 0; i < spec.Members.Count; i++)
            {
                var member = spec.Members[i];
                loaded[member] = RecordSeal.Read<EntityRecord>(tx, Hmac, Collections.Entities, member, e => e.Canonical(), e => e.Seal)
                    ?? throw new ValidationException($"group.members[{i}]", $"no entity named '{member}'");
            }
            foreach (var left in before.Except(members, StringComparer.Ordinal))
            {
                if (RecordSeal.Read<EntityRecord>(tx, Hmac, Collections.Entities, left, e => e.Canonical(), e => e.Seal) is { } entity)
                {
                    entity.Groups = entity.Groups.Where(g => g != spec.Name).ToList();
                    PutEntity(tx, left, entity);
                }
            }
            foreach (var joined in members.Except(before, StringComparer.Ordinal))
            {
                var entity = loaded[joined];
                entity.Groups = [.. entity.Groups, spec.Name];
                PutEntity(tx, joined, entity);
            }
            var record = new GroupRecord { Policies = named, Members = members };
            PutGroup(tx, spec.Name, record);
            return record;
        }, cancellationToken);
    }

    public GroupRecord GetGroup(string name)
    {
        PolicyStore.ValidateName(name);
        return TryGetGroup(name) ?? throw new NotFoundException($"no group named '{name}'");
    }

    public IReadOnlyList<string> ListGroups() => store.List<GroupRecord>(Collections.Groups, "").Select(p => p.Key).ToList();

    public Task DeleteGroupAsync(string name, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(name);
        return store.WriteAsync(tx =>
        {
            var group = RecordSeal.Read<GroupRecord>(tx, Hmac, Collections.Groups, name, g => g.Canonical(), g => g.Seal) ?? throw new NotFoundException($"no group named '{name}'");
            foreach (var member in group.Members)
            {
                if (RecordSeal.Read<EntityRecord>(tx, Hmac, Collections.Entities, member, e => e.Canonical(), e => e.Seal) is { } entity)
                {
                    entity.Groups = entity.Groups.Where(g => g != name).ToList();
                    PutEntity(tx, member, entity);
                }
            }
            tx.Delete(Collections.Groups, name);
            return true;
        }, cancellationToken);
    }

    /// <summary>
    /// Writes a person's new token (a login's) inside <paramref name="tx"/>, and names it and the
    /// person in the request's audit entry.
    /// </summary>
    internal static TokenRecord WritePersonToken(IStoreWriter tx, Func<string, byte[], byte[]> hmac, string tokenHash, string displayName, EntityRecord entity, string entityName,
        List<string> policies, long ttlSeconds, long maxTtlSeconds, long now, long? mfaAt, List<string> externalGroups, Audit.AuditScope? audit)
    {
        var record = new TokenRecord
        {
            Accessor = TokenManager.NewAccessor(),
            Policies = policies,
            DisplayName = displayName,
            CreatedAtUnixMs = now,
            TtlSeconds = ttlSeconds,
            ExpiresAtUnixMs = now + ttlSeconds * 1000,
            MaxExpiresAtUnixMs = now + maxTtlSeconds * 1000,
            Entity = entityName,
            EntityId = entity.EntityId,
            MfaAtUnixMs = mfaAt,
            ExternalGroups = externalGroups,
        };
        TokenManager.Write(tx, hmac, tokenHash, record);
        if (audit is not null)
        {
            audit.Accessor = record.Accessor;
            audit.Entity = record.Entity;
            audit.EntityId = record.EntityId;
        }
        return record;
    }

    /// <inheritdoc/>
    public bool IsActive(string entity, string entityId) => TryGetEntity(entity) is { Disabled: false } record && record.EntityId == entityId;

    /// <inheritdoc/>
    public IReadOnlyList<string> PoliciesOf(string entity, string entityId, IReadOnlyList<string> externalGroups)
    {
        var record = TryGetEntity(entity);
        if (record is null || record.EntityId != entityId)
        {
            throw new UnauthenticatedException("token is invalid, revoked or expired: its entity was deleted");
        }
        if (record.Disabled)
        {
            throw new UnauthenticatedException($"entity '{entity}' is disabled");
        }
        if (record.Groups.Count == 0 && record.ActiveGrants.Count == 0 && externalGroups.Count == 0)
        {
            return record.Policies;
        }
        var all = new List<string>(record.Policies);
        foreach (var group in record.Groups.Concat(externalGroups))
        {
            all.AddRange(TryGetGroup(group)?.Policies ?? []);
        }
        // A grant counts until its end on the vault's clock, whether or not the reaper has come by.
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var grant in record.ActiveGrants)
        {
            if (grant.EndsAtUnixMs > now)
            {
                all.AddRange(grant.Policies);
            }
        }
        return all;
    }

    private GroupRecord? TryGetGroup(string name) =>
        store.GetDerived<GroupRecord, GroupRecord>(Collections.Groups, name, g => RecordSeal.Verified(Hmac, Collections.Groups, name, g, g.Canonical(), g.Seal));

    /// <summary>Writes <paramref name="record"/> (changed by another Identity service inside <paramref name="tx"/>) with a fresh seal.</summary>
    internal void PutEntity(IStoreWriter tx, string name, EntityRecord record)
    {
        record.Seal = RecordSeal.Compute(Hmac, Collections.Entities, name, record.Canonical());
        tx.Put(Collections.Entities, name, record);
    }

    private void PutGroup(IStoreWriter tx, string name, GroupRecord record)
    {
        record.Seal = RecordSeal.Compute(Hmac, Collections.Groups, name, record.Canonical());
        tx.Put(Collections.Groups, name, record);
    }

    private byte[] Hmac(string purpose, byte[] value) => barrier.Hmac(purpose, value);

    private static string NewId() => "ve_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
}
