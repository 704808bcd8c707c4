using Vault.Protocol.V1;
using Vault.Server.Auth;
using Vault.Server.Leases;
using Vault.Server.Rotation;
using Vault.Server.Secrets;

namespace Vault.Server.Grpc;

/// <summary>What one RPC needs: any of <paramref name="AnyOf"/> on <paramref name="Path"/>.</summary>
public readonly record struct RequiredAccess(string Path, Capability AnyOf);

/// <summary>
/// The resource path and capability every RPC needs, in one table. The interceptor checks it
/// before any handler runs; an RPC missing from the table is refused, so a new RPC cannot be
/// exposed by accident.
/// </summary>
public sealed class AccessRules(KvEngine kv, PolicyStore policies, AppRoleManager approles, TargetManager targets, LeaseManager leases)
{
    /// <returns>The access needed, or null when any valid token may call (a token acting on itself).</returns>
    /// <exception cref="AccessDeniedException">The RPC is not in the table.</exception>
    public RequiredAccess? For(string method, object request, CallerContext caller) => (method, request) switch
    {
        (_, PutSecretRequest r) => new($"kv/{SecretValidation.Path(r.Path)}", kv.Exists(r.Path) ? Capability.Update : Capability.Create),
        (_, GetSecretRequest r) => new($"kv/{SecretValidation.Path(r.Path)}", Capability.Read),
        (_, ListSecretsRequest r) => new($"kv/{SecretValidation.Prefix(r.Prefix)}", Capability.List),
        (_, DeleteSecretRequest r) => new($"kv/{SecretValidation.Path(r.Path)}", Capability.Delete),
        (_, UndeleteSecretRequest r) => new($"kv/{SecretValidation.Path(r.Path)}", Capability.Update),
        (_, DestroySecretRequest r) => new($"kv/{SecretValidation.Path(r.Path)}", Capability.Delete),
        (_, GetMetadataRequest r) => new($"kv/{SecretValidation.Path(r.Path)}", Capability.Read),
        (_, UpdateMetadataRequest r) => new($"kv/{SecretValidation.Path(r.Path)}", Capability.Update),
        (_, DeleteMetadataRequest r) => new($"kv/{SecretValidation.Path(r.Path)}", Capability.Delete),
        (_, CreateTokenRequest) => new("auth/token/create", Capability.Create | Capability.Update),
        (_, LookupTokenRequest r) => OtherToken(r.Accessor, caller, Capability.Read),
        (_, RenewTokenRequest r) => OtherToken(r.Accessor, caller, Capability.Update),
        (_, RevokeTokenRequest r) => OtherToken(r.Accessor, caller, Capability.Delete),
        (_, PutPolicyRequest r) => new($"sys/policy/{PolicyStore.ValidateName(r.Policy?.Name, "policy.name")}",
            policies.Exists(r.Policy!.Name) ? Capability.Update : Capability.Create),
        (_, GetPolicyRequest r) => new($"sys/policy/{PolicyStore.ValidateName(r.Name)}", Capability.Read),
        (_, ListPoliciesRequest) => new("sys/policy", Capability.List),
        (_, DeletePolicyRequest r) => new($"sys/policy/{PolicyStore.ValidateName(r.Name)}", Capability.Delete),
        (_, SealRequest) => new("sys/seal", Capability.Update),
        (_, RotateKeyRequest) => new("sys/rotate-key", Capability.Update),
        (_, PutRoleRequest r) => new($"auth/approle/role/{PolicyStore.ValidateName(r.Role?.Name, "role.name")}",
            approles.Exists(r.Role!.Name) ? Capability.Update : Capability.Create),
        (_, GetRoleRequest r) => new($"auth/approle/role/{PolicyStore.ValidateName(r.Name)}", Capability.Read),
        (_, ListRolesRequest) => new("auth/approle/role", Capability.List),
        (_, DeleteRoleRequest r) => new($"auth/approle/role/{PolicyStore.ValidateName(r.Name)}", Capability.Delete),
        (_, GetRoleIdRequest r) => new($"auth/approle/role/{PolicyStore.ValidateName(r.Name)}/role-id", Capability.Read),
        (_, CreateSecretIdRequest r) => new($"auth/approle/role/{PolicyStore.ValidateName(r.Name)}/secret-id", Capability.Create | Capability.Update),
        (_, PutTargetRequest r) => new(Target(r.Target?.Name, "target.name"), targets.Exists(r.Target!.Name) ? Capability.Update : Capability.Create),
        (_, GetTargetRequest r) => new(Target(r.Name), Capability.Read),
        (_, ListTargetsRequest) => new("rotation/target", Capability.List),
        (_, DeleteTargetRequest r) => new(Target(r.Name), Capability.Delete),
        (_, RotateTargetRequest r) => new(Target(r.Name), Capability.Rotate),
        (_, PauseTargetRequest r) => new($"{Target(r.Name)}/pause", Capability.Update),
        (_, ResumeTargetRequest r) => new($"{Target(r.Name)}/pause", Capability.Update),
        (_, ListTargetHistoryRequest r) => new($"{Target(r.Name)}/history", Capability.Read),
        (_, GetTargetCredentialRequest r) => new($"{Target(r.Name)}/credential", Capability.Read),
        (_, WatchTargetRequest r) => new($"{Target(r.Name)}/credential", Capability.Read),
        (_, PutDynamicRoleRequest r) => new($"lease/role/{PolicyStore.ValidateName(r.Role?.Name, "role.name")}",
            leases.RoleExists(r.Role!.Name) ? Capability.Update : Capability.Create),
        (_, GetDynamicRoleRequest r) => new($"lease/role/{PolicyStore.ValidateName(r.Name)}", Capability.Read),
        (_, ListDynamicRolesRequest) => new("lease/role", Capability.List),
        (_, DeleteDynamicRoleRequest r) => new($"lease/role/{PolicyStore.ValidateName(r.Name)}", Capability.Delete),
        (_, IssueCredentialRequest r) => new($"lease/creds/{PolicyStore.ValidateName(r.Role, "role")}", Capability.Read),
        (_, RenewLeaseRequest r) => OwnLease(r.LeaseId, caller, Capability.Update),
        (_, RevokeLeaseRequest r) => OwnLease(r.LeaseId, caller, Capability.Delete),
        (_, LookupLeaseRequest r) => OwnLease(r.LeaseId, caller, Capability.Read),
        (_, RevokeLeasePrefixRequest r) => new($"lease/id/{LeaseManager.ValidatePrefix(r.Prefix)}", Capability.Delete),
        (_, ListLeasesRequest r) => new($"lease/id/{LeaseManager.ValidatePrefix(r.Prefix)}", Capability.List),
        (_, PutCheckoutSetRequest r) => new($"lease/set/{PolicyStore.ValidateName(r.Set?.Name, "set.name")}",
            leases.SetExists(r.Set!.Name) ? Capability.Update : Capability.Create),
        (_, GetCheckoutSetRequest r) => new($"lease/set/{PolicyStore.ValidateName(r.Name)}", Capability.Read),
        (_, ListCheckoutSetsRequest) => new("lease/set", Capability.List),
        (_, DeleteCheckoutSetRequest r) => new($"lease/set/{PolicyStore.ValidateName(r.Name)}", Capability.Delete),
        (_, CheckoutAccountRequest r) => new($"lease/set/{PolicyStore.ValidateName(r.Set, "set")}", Capability.Checkout),
        (_, LeaseStaticCredentialRequest r) => new($"{Target(r.Target, "target")}/credential", Capability.Read),
        (_, TailAuditRequest) => new("sys/audit", Capability.Read),
        (_, VerifyAuditRequest) => new("sys/audit", Capability.Read),
        (_, HashAuditRequest) => new("sys/audit/hash", Capability.Update),
        (_, AcknowledgeAuditGapRequest) => new("sys/audit/acknowledge", Capability.Update),
        (_, ArchiveAuditRequest) => new("sys/audit/archive", Capability.Update),
        _ => throw new AccessDeniedException($"{method} has no access rule"),
    };

    private static string Target(string? name, string field = "name") => $"rotation/target/{PolicyStore.ValidateName(name, field)}";

    /// <summary>The token that took a lease may act on it; anyone else needs the capability on <c>lease/id/&lt;id&gt;</c>.</summary>
    private RequiredAccess? OwnLease(string leaseId, CallerContext caller, Capability capability) =>
        leases.HolderOf(leaseId) == caller.Accessor ? null : new RequiredAccess($"lease/id/{leaseId}", capability);

    private static RequiredAccess? OtherToken(string accessor, CallerContext caller, Capability capability) =>
        accessor.Length == 0 || accessor == caller.Accessor ? null : new RequiredAccess($"auth/token/accessors/{TokenManager.ValidateAccessor(accessor)}", capability);
}
