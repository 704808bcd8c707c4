using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Server.Auth;

namespace Vault.Server.Grpc;

/// <summary>Machine login over gRPC.</summary>
public sealed class AppRoleGrpcService(AppRoleManager approles, Crypto.SecurityBarrier barrier, TimeProvider clock) : AppRoleService.AppRoleServiceBase
{
    public override async Task<Role> PutRole(PutRoleRequest request, ServerCallContext context)
    {
        var role = request.Role ?? throw new ValidationException("role", "is required");
        var record = await approles.PutRoleAsync(new AppRoleSpec(role.Name, role.Policies,
            role.TokenTtl.AsTimeSpan("role.token_ttl"), role.TokenMaxTtl.AsTimeSpan("role.token_max_ttl"),
            role.SecretIdTtl.AsTimeSpan("role.secret_id_ttl"), role.SecretIdNumUses, role.BoundCidrs), context.CancellationToken);
        return ToProto(role.Name, record);
    }

    public override Task<Role> GetRole(GetRoleRequest request, ServerCallContext context) =>
        Task.FromResult(ToProto(request.Name, approles.GetRole(request.Name)));

    public override Task<ListRolesResponse> ListRoles(ListRolesRequest request, ServerCallContext context)
    {
        var response = new ListRolesResponse();
        response.Names.AddRange(approles.ListRoles());
        return Task.FromResult(response);
    }

    public override async Task<DeleteRoleResponse> DeleteRole(DeleteRoleRequest request, ServerCallContext context)
    {
        await approles.DeleteRoleAsync(request.Name, context.CancellationToken);
        return new DeleteRoleResponse();
    }

    public override Task<GetRoleIdResponse> GetRoleId(GetRoleIdRequest request, ServerCallContext context) =>
        Task.FromResult(new GetRoleIdResponse { RoleId = approles.GetRole(request.Name).RoleId });

    public override async Task<CreateSecretIdResponse> CreateSecretId(CreateSecretIdRequest request, ServerCallContext context)
    {
        var issued = await approles.CreateSecretIdAsync(request.Name, context.CancellationToken);
        var response = new CreateSecretIdResponse { SecretId = issued.SecretId, SecretIdAccessor = issued.Accessor, NumUses = (uint)issued.NumUses };
        if (issued.ExpiresAt is { } expires)
        {
            response.ExpiresAt = Timestamp.FromDateTimeOffset(expires);
        }
        return response;
    }

    public override async Task<DestroySecretIdResponse> DestroySecretId(DestroySecretIdRequest request, ServerCallContext context)
    {
        await approles.DestroySecretIdAsync(request.Name, request.Accessor, context.CancellationToken);
        return new DestroySecretIdResponse();
    }

    public override async Task<AppRoleLoginResponse> Login(AppRoleLoginRequest request, ServerCallContext context)
    {
        // The caller's own address, also when a standby forwarded the login.
        var source = Cluster.ClientAddress.Of(context.GetHttpContext(), barrier, clock.GetUtcNow());
        var (token, record) = await approles.LoginAsync(request.RoleId, request.SecretId, source, context.CancellationToken);
        return new AppRoleLoginResponse { Token = token, Info = record.ToProto() };
    }

    private static Role ToProto(string name, AppRoleRecord record)
    {
        var role = new Role
        {
            Name = name,
            TokenTtl = Duration.FromTimeSpan(TimeSpan.FromSeconds(record.TokenTtlSeconds)),
            TokenMaxTtl = Duration.FromTimeSpan(TimeSpan.FromSeconds(record.TokenMaxTtlSeconds)),
            SecretIdTtl = Duration.FromTimeSpan(TimeSpan.FromSeconds(record.SecretIdTtlSeconds)),
            SecretIdNumUses = (uint)record.SecretIdNumUses,
        };
        role.Policies.AddRange(record.Policies);
        role.BoundCidrs.AddRange(record.BoundCidrs);
        return role;
    }
}
