using Vault.Protocol.V1;

namespace Vault.Client;

public sealed partial class VaultClient
{
    private AccessService.AccessServiceClient AccessRequests => new(_invoker);

    /// <summary>Creates or replaces a grant: the policies it confers, its approvers and limits.</summary>
    /// <param name="grant">The grant.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The grant as stored.</returns>
    /// <exception cref="Grpc.Core.RpcException">InvalidArgument for a bad name, policy, group, duration or approval count.</exception>
    public async Task<Grant> PutGrantAsync(Grant grant, CancellationToken cancellationToken = default) =>
        await AccessRequests.PutGrantAsync(new PutGrantRequest { Grant = grant }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Reads a grant.</summary>
    /// <param name="name">The grant's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The grant.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown grant.</exception>
    public async Task<Grant> GetGrantAsync(string name, CancellationToken cancellationToken = default) =>
        await AccessRequests.GetGrantAsync(new GetGrantRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Lists the grant names.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The names.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task<IReadOnlyList<string>> ListGrantsAsync(CancellationToken cancellationToken = default) =>
        (await AccessRequests.ListGrantsAsync(new ListGrantsRequest(), Call(cancellationToken)).ConfigureAwait(false)).Names;

    /// <summary>Deletes a grant; requests already made keep their course.</summary>
    /// <param name="name">The grant's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the grant is gone.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown grant.</exception>
    public async Task DeleteGrantAsync(string name, CancellationToken cancellationToken = default) =>
        await AccessRequests.DeleteGrantAsync(new DeleteGrantRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Asks for a grant (the token must act for a person).</summary>
    /// <param name="grant">The grant's name.</param>
    /// <param name="reason">Why, shown to the approvers.</param>
    /// <param name="duration">How long; null for the grant's maximum.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The request: pending, or active at once for an emergency grant.</returns>
    /// <exception cref="Grpc.Core.RpcException">InvalidArgument for a missing reason or a duration over the grant's maximum; FailedPrecondition "mfa required" when the grant needs a fresh MFA.</exception>
    public async Task<AccessRequest> CreateAccessRequestAsync(string grant, string reason, TimeSpan? duration = null, CancellationToken cancellationToken = default) =>
        await AccessRequests.CreateRequestAsync(new CreateAccessRequestRequest
        {
            Grant = grant,
            Reason = reason,
            Duration = duration is { } d ? Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(d) : null,
        }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Reads an access request.</summary>
    /// <param name="id">The request's id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The request and its course.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown request.</exception>
    public async Task<AccessRequest> GetAccessRequestAsync(string id, CancellationToken cancellationToken = default) =>
        await AccessRequests.GetRequestAsync(new GetAccessRequestRequest { Id = id }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Lists access requests, optionally only those in one state ("pending", "active", …).</summary>
    /// <param name="state">The state, or null for all.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The requests.</returns>
    /// <exception cref="Grpc.Core.RpcException">InvalidArgument for an unknown state.</exception>
    public async Task<IReadOnlyList<AccessRequest>> ListAccessRequestsAsync(string? state = null, CancellationToken cancellationToken = default) =>
        (await AccessRequests.ListRequestsAsync(new ListAccessRequestsRequest { State = state ?? "" }, Call(cancellationToken)).ConfigureAwait(false)).Requests;

    /// <summary>Approves a request (an approver of its grant, never the requester; one approver counts once).</summary>
    /// <param name="id">The request's id.</param>
    /// <param name="comment">Why, kept with the approval.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The request: active once it has enough approvals.</returns>
    /// <exception cref="Grpc.Core.RpcException">PermissionDenied for the requester or someone outside the approver group; FailedPrecondition for a request that is no longer pending.</exception>
    public async Task<AccessRequest> ApproveAccessRequestAsync(string id, string? comment = null, CancellationToken cancellationToken = default) =>
        await AccessRequests.ApproveAsync(new ApproveAccessRequestRequest { Id = id, Comment = comment ?? "" }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Denies a request; it is closed.</summary>
    /// <param name="id">The request's id.</param>
    /// <param name="comment">Why, shown to the requester.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The closed request.</returns>
    /// <exception cref="Grpc.Core.RpcException">PermissionDenied for the requester or someone outside the approver group.</exception>
    public async Task<AccessRequest> DenyAccessRequestAsync(string id, string? comment = null, CancellationToken cancellationToken = default) =>
        await AccessRequests.DenyAsync(new DenyAccessRequestRequest { Id = id, Comment = comment ?? "" }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Ends an active grant at once, or withdraws a pending request.</summary>
    /// <param name="id">The request's id.</param>
    /// <param name="comment">Why.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The revoked request.</returns>
    /// <exception cref="Grpc.Core.RpcException">FailedPrecondition when there is nothing to revoke.</exception>
    public async Task<AccessRequest> RevokeAccessRequestAsync(string id, string? comment = null, CancellationToken cancellationToken = default) =>
        await AccessRequests.RevokeAsync(new RevokeAccessRequestRequest { Id = id, Comment = comment ?? "" }, Call(cancellationToken)).ConfigureAwait(false);
}
