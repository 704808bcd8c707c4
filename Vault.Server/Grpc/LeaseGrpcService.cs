using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Server.Auth;
using Vault.Server.Leases;

namespace Vault.Server.Grpc;

/// <summary>
/// Leases over gRPC: maps messages to the lease services — roles to <see cref="DynamicRoles"/>,
/// issuing to <see cref="DynamicLeases"/>, sets and check-out to <see cref="CheckoutSets"/>, static
/// credentials to <see cref="StaticLeases"/>, renewal and revocation of any lease to
/// <see cref="LeaseLifecycle"/>, and lookup and listing to <see cref="LeaseStore"/>.
/// </summary>
public sealed class LeaseGrpcService(
    DynamicRoles roles,
    DynamicLeases dynamic,
    CheckoutSets sets,
    StaticLeases statics,
    LeaseLifecycle lifecycle,
    LeaseStore store,
    Microsoft.Extensions.Hosting.IHostApplicationLifetime lifetime) : LeaseService.LeaseServiceBase
{
    public override async Task<DynamicRole> PutDynamicRole(PutDynamicRoleRequest request, ServerCallContext context)
    {
        var role = request.Role ?? throw new ValidationException("role", "is required");
        // Access to the target and its admin credential was checked with the request (AccessRules).
        var record = await roles.PutAsync(role.Name, role.Target, role.CreationStatements,
            role.DefaultTtl.AsTimeSpan("role.default_ttl"), role.MaxTtl.AsTimeSpan("role.max_ttl"), context.CancellationToken);
        return ToProto(role.Name, record);
    }

    public override Task<DynamicRole> GetDynamicRole(GetDynamicRoleRequest request, ServerCallContext context) =>
        Task.FromResult(ToProto(request.Name, roles.Get(request.Name)));

    public override Task<ListDynamicRolesResponse> ListDynamicRoles(ListDynamicRolesRequest request, ServerCallContext context)
    {
        var response = new ListDynamicRolesResponse();
        response.Names.AddRange(roles.List());
        return Task.FromResult(response);
    }

    public override async Task<DeleteDynamicRoleResponse> DeleteDynamicRole(DeleteDynamicRoleRequest request, ServerCallContext context)
    {
        await roles.DeleteAsync(request.Name, context.CancellationToken);
        return new DeleteDynamicRoleResponse();
    }

    public override async Task<IssuedCredential> IssueCredential(IssueCredentialRequest request, ServerCallContext context)
    {
        var (id, lease, password) = await dynamic.IssueAsync(request.Role, request.Ttl.AsTimeSpan("ttl"), VaultInterceptor.Caller(context), context.CancellationToken);
        return new IssuedCredential { Lease = ToProto(id, lease), Username = lease.Username, Password = password };
    }

    public override async Task<Lease> RenewLease(RenewLeaseRequest request, ServerCallContext context) =>
        ToProto(request.LeaseId, await lifecycle.RenewAsync(request.LeaseId, request.Increment.AsTimeSpan("increment"), context.CancellationToken));

    // Revocation (a drop, or a check-in's rotation) runs to its end even if the caller goes away.
    public override async Task<Lease> RevokeLease(RevokeLeaseRequest request, ServerCallContext context) =>
        ToProto(request.LeaseId, await lifecycle.RevokeAsync(request.LeaseId, "revoked on request", lifetime.ApplicationStopping).WaitAsync(context.CancellationToken));

    public override async Task<RevokeLeasePrefixResponse> RevokeLeasePrefix(RevokeLeasePrefixRequest request, ServerCallContext context) =>
        new() { Count = (uint)await lifecycle.RevokePrefixAsync(request.Prefix, lifetime.ApplicationStopping).WaitAsync(context.CancellationToken) };

    public override Task<Lease> LookupLease(LookupLeaseRequest request, ServerCallContext context) =>
        Task.FromResult(ToProto(request.LeaseId, store.Lookup(request.LeaseId)));

    public override Task<ListLeasesResponse> ListLeases(ListLeasesRequest request, ServerCallContext context)
    {
        var response = new ListLeasesResponse();
        response.Leases.AddRange(store.List(request.Prefix).Select(l => ToProto(l.Id, l.Lease)));
        return Task.FromResult(response);
    }

    public override async Task<CheckoutSet> PutCheckoutSet(PutCheckoutSetRequest request, ServerCallContext context)
    {
        var set = request.Set ?? throw new ValidationException("set", "is required");
        // Read access to every lent target's password was checked with the request (AccessRules).
        var record = await sets.PutAsync(set.Name, set.Targets, set.DefaultTtl.AsTimeSpan("set.default_ttl"), set.MaxTtl.AsTimeSpan("set.max_ttl"), context.CancellationToken);
        return ToProto(set.Name, record);
    }

    public override Task<CheckoutSet> GetCheckoutSet(GetCheckoutSetRequest request, ServerCallContext context) =>
        Task.FromResult(ToProto(request.Name, sets.Get(request.Name)));

    public override Task<ListCheckoutSetsResponse> ListCheckoutSets(ListCheckoutSetsRequest request, ServerCallContext context)
    {
        var response = new ListCheckoutSetsResponse();
        response.Names.AddRange(sets.List());
        return Task.FromResult(response);
    }

    public override async Task<DeleteCheckoutSetResponse> DeleteCheckoutSet(DeleteCheckoutSetRequest request, ServerCallContext context)
    {
        await sets.DeleteAsync(request.Name, context.CancellationToken);
        return new DeleteCheckoutSetResponse();
    }

    public override async Task<IssuedCredential> CheckoutAccount(CheckoutAccountRequest request, ServerCallContext context)
    {
        var (id, lease, password) = await sets.CheckoutAsync(request.Set, request.Ttl.AsTimeSpan("ttl"), request.Wait.AsTimeSpan("wait"),
            VaultInterceptor.Caller(context), context.CancellationToken);
        return new IssuedCredential { Lease = ToProto(id, lease), Username = lease.Username, Password = password };
    }

    public override async Task<IssuedCredential> LeaseStaticCredential(LeaseStaticCredentialRequest request, ServerCallContext context)
    {
        var (id, lease, credential) = await statics.LeaseAsync(request.Target, request.Ttl.AsTimeSpan("ttl"), VaultInterceptor.Caller(context), context.CancellationToken);
        var issued = new IssuedCredential { Lease = ToProto(id, lease), Username = credential.Username, Password = credential.Password };
        if (credential.NextRotationAt is { } next)
        {
            issued.NextRotationAt = Timestamp.FromDateTimeOffset(next);
        }
        return issued;
    }

    private CheckoutSet ToProto(string name, CheckoutSetRecord record)
    {
        var set = new CheckoutSet
        {
            Name = name,
            DefaultTtl = Duration.FromTimeSpan(TimeSpan.FromSeconds(record.DefaultTtlSeconds)),
            MaxTtl = Duration.FromTimeSpan(TimeSpan.FromSeconds(record.MaxTtlSeconds)),
        };
        set.Targets.AddRange(record.Targets);
        set.Lent.AddRange(sets.Lent(name));
        return set;
    }

    private static DynamicRole ToProto(string name, DynamicRoleRecord record)
    {
        var role = new DynamicRole
        {
            Name = name,
            Target = record.Target,
            DefaultTtl = Duration.FromTimeSpan(TimeSpan.FromSeconds(record.DefaultTtlSeconds)),
            MaxTtl = Duration.FromTimeSpan(TimeSpan.FromSeconds(record.MaxTtlSeconds)),
        };
        role.CreationStatements.AddRange(record.CreationStatements);
        return role;
    }

    private static Lease ToProto(string id, LeaseRecord record) => new()
    {
        Id = id,
        Role = record.Role,
        Target = record.Target,
        Username = record.Username,
        State = record.State switch
        {
            LeaseStates.Creating => LeaseState.Creating,
            LeaseStates.Active => LeaseState.Active,
            LeaseStates.Revoking => LeaseState.Revoking,
            LeaseStates.Irrevocable => LeaseState.Irrevocable,
            LeaseStates.Revoked => LeaseState.Revoked,
            _ => LeaseState.Unspecified,
        },
        IssuedAt = ProtoMapping.Time(record.IssuedAtUnixMs),
        ExpiresAt = ProtoMapping.Time(record.ExpiresAtUnixMs),
        MaxExpiresAt = ProtoMapping.Time(record.MaxExpiresAtUnixMs),
        TokenAccessor = record.TokenAccessor,
        RevokeAttempts = (uint)record.RevokeAttempts,
        LastError = record.LastError ?? "",
    };
}
