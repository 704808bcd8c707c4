using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Server.Identity;

namespace Vault.Server.Grpc;

/// <summary>Entities and groups over gRPC.</summary>
public sealed class IdentityGrpcService(Identities identities) : IdentityService.IdentityServiceBase
{
    public override async Task<Entity> PutEntity(PutEntityRequest request, ServerCallContext context)
    {
        var entity = request.Entity ?? throw new ValidationException("entity", "is required");
        var record = await identities.PutEntityAsync(new EntitySpec(entity.Name, entity.Policies, entity.Disabled), context.CancellationToken);
        return ToProto(entity.Name, record);
    }

    public override Task<Entity> GetEntity(GetEntityRequest request, ServerCallContext context) =>
        Task.FromResult(ToProto(request.Name, identities.GetEntity(request.Name)));

    public override Task<ListEntitiesResponse> ListEntities(ListEntitiesRequest request, ServerCallContext context) =>
        Task.FromResult(new ListEntitiesResponse { Names = { identities.ListEntities() } });

    public override async Task<DeleteEntityResponse> DeleteEntity(DeleteEntityRequest request, ServerCallContext context)
    {
        await identities.DeleteEntityAsync(request.Name, context.CancellationToken);
        return new DeleteEntityResponse();
    }

    public override async Task<Group> PutGroup(PutGroupRequest request, ServerCallContext context)
    {
        var group = request.Group ?? throw new ValidationException("group", "is required");
        var record = await identities.PutGroupAsync(new GroupSpec(group.Name, group.Policies, group.Members), context.CancellationToken);
        return ToProto(group.Name, record);
    }

    public override Task<Group> GetGroup(GetGroupRequest request, ServerCallContext context) =>
        Task.FromResult(ToProto(request.Name, identities.GetGroup(request.Name)));

    public override Task<ListGroupsResponse> ListGroups(ListGroupsRequest request, ServerCallContext context) =>
        Task.FromResult(new ListGroupsResponse { Names = { identities.ListGroups() } });

    public override async Task<DeleteGroupResponse> DeleteGroup(DeleteGroupRequest request, ServerCallContext context)
    {
        await identities.DeleteGroupAsync(request.Name, context.CancellationToken);
        return new DeleteGroupResponse();
    }

    private static Entity ToProto(string name, EntityRecord record) =>
        new() { Name = name, Id = record.EntityId, Disabled = record.Disabled, Policies = { record.Policies }, Groups = { record.Groups } };

    private static Group ToProto(string name, GroupRecord record) =>
        new() { Name = name, Policies = { record.Policies }, Members = { record.Members } };
}
