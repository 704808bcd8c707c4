using Vault.Protocol.V1;
using Vault.Server.Auth;
using Vault.Server.Identity;
using Vault.Server.Leases;
using Vault.Server.Rotation;
using Vault.Server.Secrets;

namespace Vault.Server.Grpc;

/// <summary>One access an RPC needs: any of <paramref name="AnyOf"/> on <paramref name="Path"/>.</summary>
public readonly record struct RequiredAccess(string Path, Capability AnyOf);

/// <summary>Removes from a listing what the caller may not see; <c>allows</c> is the caller's policy.</summary>
public delegate void ResponseFilter(object response, Func<RequiredAccess, bool> allows);

/// <summary>
/// What one RPC needs before it runs: every access in <see cref="All"/> (the first is the one the
/// audit entry names), and for a listing, a <see cref="Filter"/> that drops the entries the
/// caller could not read one by one.
/// </summary>
public sealed record AccessCheck(IReadOnlyList<RequiredAccess> All, ResponseFilter? Filter = null)
{
    public RequiredAccess Primary => All[0];

    public static implicit operator AccessCheck(RequiredAccess access) => new([access]);
}

/// <summary>
/// Every access every RPC needs, in one table: the resource and capability it acts on, and what
/// else it touches — an admin credential a target will use, the passwords a move sends elsewhere,
/// the accounts a set will lend. The interceptor checks all of them before any handler runs, and
/// is the only code that asks a policy anything; an RPC missing from the table is refused, so a
/// new RPC cannot be exposed by accident. Paths come from <see cref="ResourcePaths"/>.
/// </summary>
public sealed class AccessRules(KvEngine kv, PolicyStore policies, AppRoleManager approles, TargetManager targets, DynamicRoles roles, CheckoutSets sets, LeaseStore leases,
    Identities identities, UserpassManager users, AccessRequests access)
{
    /// <returns>The accesses needed, or null when any valid token may call (a token acting on itself, or on a lease it took).</returns>
    /// <exception cref="AccessDeniedException">The RPC is not in the table.</exception>
    /// <exception cref="ValidationException">A name the paths are made of is not valid.</exception>
    public AccessCheck? For(string method, object request, CallerContext caller) => (method, request) switch
    {
        (_, PutSecretRequest r) => new RequiredAccess(ResourcePaths.Kv(r.Path), kv.Exists(r.Path) ? Capability.Update : Capability.Create),
        (_, GetSecretRequest r) => new RequiredAccess(ResourcePaths.Kv(r.Path), Capability.Read),
        (_, ListSecretsRequest r) => new RequiredAccess(ResourcePaths.KvPrefix(r.Prefix), Capability.List),
        (_, DeleteSecretRequest r) => new RequiredAccess(ResourcePaths.Kv(r.Path), Capability.Delete),
        (_, UndeleteSecretRequest r) => new RequiredAccess(ResourcePaths.Kv(r.Path), Capability.Update),
        (_, DestroySecretRequest r) => new RequiredAccess(ResourcePaths.Kv(r.Path), Capability.Delete),
        (_, GetMetadataRequest r) => new RequiredAccess(ResourcePaths.Kv(r.Path), Capability.Read),
        (_, UpdateMetadataRequest r) => new RequiredAccess(ResourcePaths.Kv(r.Path), Capability.Update),
        (_, DeleteMetadataRequest r) => new RequiredAccess(ResourcePaths.Kv(r.Path), Capability.Delete),
        (_, CreateTokenRequest) => new RequiredAccess("auth/token/create", Capability.Create | Capability.Update),
        (_, LookupTokenRequest r) => OtherToken(r.Accessor, caller, Capability.Read),
        (_, RenewTokenRequest r) => OtherToken(r.Accessor, caller, Capability.Update),
        (_, RevokeTokenRequest r) => OtherToken(r.Accessor, caller, Capability.Delete),
        (_, PutPolicyRequest r) => new RequiredAccess(ResourcePaths.Policy(r.Policy?.Name, "policy.name"),
            policies.Exists(r.Policy!.Name) ? Capability.Update : Capability.Create),
        (_, GetPolicyRequest r) => new RequiredAccess(ResourcePaths.Policy(r.Name), Capability.Read),
        (_, ListPoliciesRequest) => new RequiredAccess(ResourcePaths.Policies, Capability.List),
        (_, DeletePolicyRequest r) => new RequiredAccess(ResourcePaths.Policy(r.Name), Capability.Delete),
        (_, SealRequest) => new RequiredAccess("sys/seal", Capability.Update),
        (_, RotateKeyRequest) => new RequiredAccess("sys/rotate-key", Capability.Update),
        (_, WatchEventsRequest) => new RequiredAccess("sys/events", Capability.Read),
        (_, PutRoleRequest r) => new RequiredAccess(ResourcePaths.AppRole(r.Role?.Name, "role.name"),
            approles.Exists(r.Role!.Name) ? Capability.Update : Capability.Create),
        (_, GetRoleRequest r) => new RequiredAccess(ResourcePaths.AppRole(r.Name), Capability.Read),
        (_, ListRolesRequest) => new RequiredAccess(ResourcePaths.AppRoles, Capability.List),
        (_, DeleteRoleRequest r) => new RequiredAccess(ResourcePaths.AppRole(r.Name), Capability.Delete),
        (_, GetRoleIdRequest r) => new RequiredAccess($"{ResourcePaths.AppRole(r.Name)}/role-id", Capability.Read),
        (_, CreateSecretIdRequest r) => new RequiredAccess($"{ResourcePaths.AppRole(r.Name)}/secret-id", Capability.Create | Capability.Update),
        (_, DestroySecretIdRequest r) => new RequiredAccess($"{ResourcePaths.AppRole(r.Name)}/secret-id", Capability.Delete),
        (_, PutUserRequest r) => new RequiredAccess(ResourcePaths.UserpassUser(r.User?.Name, "user.name"),
            users.Exists(r.User!.Name) ? Capability.Update : Capability.Create),
        (_, GetUserRequest r) => new RequiredAccess(ResourcePaths.UserpassUser(r.Name), Capability.Read),
        (_, ListUsersRequest) => new RequiredAccess(ResourcePaths.UserpassUsers, Capability.List),
        (_, DeleteUserRequest r) => new RequiredAccess(ResourcePaths.UserpassUser(r.Name), Capability.Delete),
        (_, SetLdapConfigRequest) => new RequiredAccess("auth/ldap/config", Capability.Update),
        (_, GetLdapConfigRequest) => new RequiredAccess("auth/ldap/config", Capability.Read),
        (_, SetUserpassConfigRequest) => new RequiredAccess("auth/userpass/config", Capability.Update),
        (_, GetUserpassConfigRequest) => new RequiredAccess("auth/userpass/config", Capability.Read),
        (_, UnlockUserRequest r) => new RequiredAccess($"{ResourcePaths.UserpassUser(r.Name)}/lockout", Capability.Update),
        (_, PutGrantRequest r) => new RequiredAccess(ResourcePaths.Grant(r.Grant?.Name, "grant.name"), access.GrantExists(r.Grant!.Name) ? Capability.Update : Capability.Create),
        (_, GetGrantRequest r) => new RequiredAccess(ResourcePaths.Grant(r.Name), Capability.Read),
        (_, ListGrantsRequest) => new RequiredAccess(ResourcePaths.Grants, Capability.List),
        (_, DeleteGrantRequest r) => new RequiredAccess(ResourcePaths.Grant(r.Name), Capability.Delete),
        (_, CreateAccessRequestRequest r) => new RequiredAccess($"{ResourcePaths.Grant(r.Grant, "grant")}/request", Capability.Create),
        (_, GetAccessRequestRequest r) => OwnRequest(r.Id, caller, Capability.Read),
        (_, ListAccessRequestsRequest) => new RequiredAccess(ResourcePaths.AccessRequests, Capability.List),
        (_, WatchAccessRequestsRequest) => new RequiredAccess(ResourcePaths.AccessRequests, Capability.List),
        // The grant says who answers (its approver group, never the requester): the domain checks it.
        (_, ApproveAccessRequestRequest) => null,
        (_, DenyAccessRequestRequest) => null,
        (_, RevokeAccessRequestRequest r) => OwnRequest(r.Id, caller, Capability.Update),
        (_, EnrollMfaRequest r) => r.Entity.Length == 0 ? null : new RequiredAccess($"{ResourcePaths.Entity(r.Entity, "entity")}/mfa", Capability.Update),
        (_, ValidateMfaRequest) => null,
        (_, GetMfaRequest r) => new RequiredAccess($"{ResourcePaths.Entity(r.Entity, "entity")}/mfa", Capability.Read),
        (_, ResetMfaRequest r) => new RequiredAccess($"{ResourcePaths.Entity(r.Entity, "entity")}/mfa", Capability.Delete),
        (_, PutEntityRequest r) => new RequiredAccess(ResourcePaths.Entity(r.Entity?.Name, "entity.name"),
            identities.EntityExists(r.Entity!.Name) ? Capability.Update : Capability.Create),
        (_, GetEntityRequest r) => new RequiredAccess(ResourcePaths.Entity(r.Name), Capability.Read),
        (_, ListEntitiesRequest) => new RequiredAccess(ResourcePaths.Entities, Capability.List),
        (_, DeleteEntityRequest r) => new RequiredAccess(ResourcePaths.Entity(r.Name), Capability.Delete),
        (_, PutGroupRequest r) => new RequiredAccess(ResourcePaths.Group(r.Group?.Name, "group.name"),
            identities.GroupExists(r.Group!.Name) ? Capability.Update : Capability.Create),
        (_, GetGroupRequest r) => new RequiredAccess(ResourcePaths.Group(r.Name), Capability.Read),
        (_, ListGroupsRequest) => new RequiredAccess(ResourcePaths.Groups, Capability.List),
        (_, DeleteGroupRequest r) => new RequiredAccess(ResourcePaths.Group(r.Name), Capability.Delete),
        (_, PutTargetRequest r) => PutTarget(r),
        (_, GetTargetRequest r) => new RequiredAccess(ResourcePaths.Target(r.Name), Capability.Read),
        (_, ListTargetsRequest) => new AccessCheck([new(ResourcePaths.Targets, Capability.List)], ReadableTargetsOnly),
        (_, DeleteTargetRequest r) => new RequiredAccess(ResourcePaths.Target(r.Name), Capability.Delete),
        (_, RotateTargetRequest r) => new RequiredAccess(ResourcePaths.Target(r.Name), Capability.Rotate),
        (_, PauseTargetRequest r) => new RequiredAccess($"{ResourcePaths.Target(r.Name)}/pause", Capability.Update),
        (_, ResumeTargetRequest r) => new RequiredAccess($"{ResourcePaths.Target(r.Name)}/pause", Capability.Update),
        (_, ListTargetHistoryRequest r) => new RequiredAccess($"{ResourcePaths.Target(r.Name)}/history", Capability.Read),
        (_, GetTargetCredentialRequest r) => new RequiredAccess(ResourcePaths.TargetCredential(r.Name), Capability.Read),
        (_, WatchTargetRequest r) => new RequiredAccess(ResourcePaths.TargetCredential(r.Name), Capability.Read),
        (_, PutDynamicRoleRequest r) => PutDynamicRole(r),
        (_, GetDynamicRoleRequest r) => new RequiredAccess(ResourcePaths.DynamicRole(r.Name), Capability.Read),
        (_, ListDynamicRolesRequest) => new RequiredAccess(ResourcePaths.DynamicRoles, Capability.List),
        (_, DeleteDynamicRoleRequest r) => new RequiredAccess(ResourcePaths.DynamicRole(r.Name), Capability.Delete),
        (_, IssueCredentialRequest r) => new RequiredAccess(ResourcePaths.DynamicCredentials(r.Role), Capability.Read),
        (_, RenewLeaseRequest r) => OwnLease(r.LeaseId, caller, Capability.Update),
        (_, RevokeLeaseRequest r) => OwnLease(r.LeaseId, caller, Capability.Delete),
        (_, LookupLeaseRequest r) => OwnLease(r.LeaseId, caller, Capability.Read),
        (_, RevokeLeasePrefixRequest r) => new RequiredAccess(ResourcePaths.LeasePrefix(r.Prefix), Capability.Delete),
        (_, ListLeasesRequest r) => new RequiredAccess(ResourcePaths.LeasePrefix(r.Prefix), Capability.List),
        (_, PutCheckoutSetRequest r) => PutCheckoutSet(r),
        (_, GetCheckoutSetRequest r) => new RequiredAccess(ResourcePaths.CheckoutSet(r.Name), Capability.Read),
        (_, ListCheckoutSetsRequest) => new RequiredAccess(ResourcePaths.CheckoutSets, Capability.List),
        (_, DeleteCheckoutSetRequest r) => new RequiredAccess(ResourcePaths.CheckoutSet(r.Name), Capability.Delete),
        (_, CheckoutAccountRequest r) => new RequiredAccess(ResourcePaths.CheckoutSet(r.Set, "set"), Capability.Checkout),
        (_, LeaseStaticCredentialRequest r) => new RequiredAccess(ResourcePaths.TargetCredential(r.Target, "target"), Capability.Read),
        (_, TailAuditRequest) => new RequiredAccess("sys/audit", Capability.Read),
        (_, VerifyAuditRequest) => new RequiredAccess("sys/audit", Capability.Read),
        (_, HashAuditRequest) => new RequiredAccess("sys/audit/hash", Capability.Update),
        (_, AcknowledgeAuditGapRequest) => new RequiredAccess("sys/audit/acknowledge", Capability.Update),
        (_, ArchiveAuditRequest) => new RequiredAccess("sys/audit/archive", Capability.Update),
        (_, RekeyRequest) => new RequiredAccess("sys/rekey", Capability.Update),
        (_, BackupRequest) => new RequiredAccess("sys/backup", Capability.Read),
        (_, CredentialReportRequest) => new RequiredAccess("sys/report/credentials", Capability.Read),
        _ => throw new AccessDeniedException($"{method} has no access rule"),
    };

    /// <summary>
    /// Registering or changing a target. Whoever points it at an admin credential must be allowed
    /// to read that credential (the vault presents it to a host the caller chooses), and to
    /// update it if the vault is to manage it. Moving an existing target (another host, database,
    /// options or admin credential: <see cref="TargetManager.Moves"/>) sends its stored passwords
    /// to the new place, so it needs what reading them needs, and the old admin credential.
    /// </summary>
    private AccessCheck PutTarget(PutTargetRequest request)
    {
        var target = request.Target ?? throw new ValidationException("target", "is required");
        var path = ResourcePaths.Target(target.Name, "target.name");
        var existing = targets.TryGet(target.Name);
        List<RequiredAccess> all = [new(path, existing is null ? Capability.Create : Capability.Update)];
        if (target.AdminSecret.Length > 0)
        {
            var adminSecret = ResourcePaths.Kv(target.AdminSecret, "target.admin_secret");
            all.Add(new(adminSecret, Capability.Read));
            if (target.ManagesAdminSecret)
            {
                all.Add(new(adminSecret, Capability.Update));
            }
        }
        if (existing is not null && TargetManager.Moves(existing, TargetGrpcService.ToSpec(target)))
        {
            all.Add(new(ResourcePaths.TargetCredential(target.Name), Capability.Read));
            if (existing.AdminSecret.Length > 0)
            {
                all.Add(new(ResourcePaths.Kv(existing.AdminSecret), Capability.Read));
            }
        }
        return new AccessCheck(all);
    }

    /// <summary>A role's statements run as its target's admin credential: it needs what reading the target and that credential needs.</summary>
    private AccessCheck PutDynamicRole(PutDynamicRoleRequest request)
    {
        var role = request.Role ?? throw new ValidationException("role", "is required");
        List<RequiredAccess> all = [new(ResourcePaths.DynamicRole(role.Name, "role.name"), roles.Exists(role.Name) ? Capability.Update : Capability.Create)];
        if (role.Target.Length > 0)
        {
            all.Add(new(ResourcePaths.Target(role.Target, "role.target"), Capability.Read));
            if (targets.TryGet(role.Target) is { } target)
            {
                all.Add(new(ResourcePaths.Kv(target.AdminSecret), Capability.Read));
            }
        }
        return new AccessCheck(all);
    }

    /// <summary>Lending an account hands out its password: a set needs what reading each of its targets' passwords needs.</summary>
    private AccessCheck PutCheckoutSet(PutCheckoutSetRequest request)
    {
        var set = request.Set ?? throw new ValidationException("set", "is required");
        List<RequiredAccess> all = [new(ResourcePaths.CheckoutSet(set.Name, "set.name"), sets.Exists(set.Name) ? Capability.Update : Capability.Create)];
        for (var i = 0; i < set.Targets.Count; i++)
        {
            all.Add(new(ResourcePaths.TargetCredential(set.Targets[i], $"set.targets[{i}]"), Capability.Read));
        }
        return new AccessCheck(all);
    }

    /// <summary>A listing of targets shows only those the caller may read.</summary>
    private static void ReadableTargetsOnly(object response, Func<RequiredAccess, bool> allows)
    {
        var list = (ListTargetsResponse)response;
        var readable = list.Targets.Where(t => allows(new(ResourcePaths.Target(t.Name), Capability.Read))).ToList();
        list.Targets.Clear();
        list.Targets.AddRange(readable);
    }

    /// <summary>The token that took a lease may act on it; anyone else needs the capability on <c>lease/id/&lt;id&gt;</c>.</summary>
    private AccessCheck? OwnLease(string leaseId, CallerContext caller, Capability capability) =>
        leases.HolderOf(leaseId) == caller.Accessor ? null : new RequiredAccess(ResourcePaths.Lease(leaseId), capability);

    /// <summary>The person who made a request may see and revoke it; anyone else needs the capability on <c>access/request/&lt;id&gt;</c>.</summary>
    private AccessCheck? OwnRequest(string id, CallerContext caller, Capability capability)
    {
        var path = ResourcePaths.AccessRequest(id);
        return caller.Token.EntityId.Length > 0 && access.RequesterOf(id) == caller.Token.EntityId ? null : new RequiredAccess(path, capability);
    }

    private static AccessCheck? OtherToken(string accessor, CallerContext caller, Capability capability) =>
        accessor.Length == 0 || accessor == caller.Accessor ? null : new RequiredAccess(ResourcePaths.TokenAccessor(accessor), capability);
}
