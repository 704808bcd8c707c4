using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Server.Identity;

namespace Vault.Server.Grpc;

/// <summary>Grants and access requests over gRPC.</summary>
public sealed class AccessGrpcService(AccessRequests access) : AccessService.AccessServiceBase
{
    public override async Task<Grant> PutGrant(PutGrantRequest request, ServerCallContext context)
    {
        var grant = request.Grant ?? throw new ValidationException("grant", "is required");
        var record = await access.PutGrantAsync(new GrantSpec(grant.Name, grant.Policies, grant.MaxDuration.AsTimeSpan("grant.max_duration"), grant.ApproverGroup,
            (int)Math.Min(grant.ApprovalsRequired, int.MaxValue), grant.MfaToRequest, grant.MfaToApprove, grant.RequestTtl.AsTimeSpan("grant.request_ttl"), grant.Emergency), context.CancellationToken);
        return ToProto(grant.Name, record);
    }

    public override Task<Grant> GetGrant(GetGrantRequest request, ServerCallContext context) =>
        Task.FromResult(ToProto(request.Name, access.GetGrant(request.Name)));

    public override Task<ListGrantsResponse> ListGrants(ListGrantsRequest request, ServerCallContext context) =>
        Task.FromResult(new ListGrantsResponse { Names = { access.ListGrants() } });

    public override async Task<DeleteGrantResponse> DeleteGrant(DeleteGrantRequest request, ServerCallContext context)
    {
        await access.DeleteGrantAsync(request.Name, context.CancellationToken);
        return new DeleteGrantResponse();
    }

    public override async Task<AccessRequest> CreateRequest(CreateAccessRequestRequest request, ServerCallContext context)
    {
        var actor = Actor.Of(VaultInterceptor.Caller(context).Token);
        var (id, record) = await access.CreateAsync(actor, request.Grant, request.Reason, request.Duration.AsTimeSpan("duration"), context.CancellationToken);
        return ToProto(id, record);
    }

    public override Task<AccessRequest> GetRequest(GetAccessRequestRequest request, ServerCallContext context)
    {
        Audit.AuditScope.NameIfUnnamed(ResourcePaths.AccessRequest(request.Id));
        return Task.FromResult(ToProto(request.Id, access.GetRequest(request.Id)));
    }

    public override Task<ListAccessRequestsResponse> ListRequests(ListAccessRequestsRequest request, ServerCallContext context) =>
        Task.FromResult(new ListAccessRequestsResponse { Requests = { access.ListRequests(request.State).Select(r => ToProto(r.Id, r.Request)) } });

    public override async Task<AccessRequest> Approve(ApproveAccessRequestRequest request, ServerCallContext context)
    {
        Audit.AuditScope.NameIfUnnamed(ResourcePaths.AccessRequest(request.Id));
        return ToProto(request.Id, await access.ApproveAsync(Actor.Of(VaultInterceptor.Caller(context).Token), request.Id, request.Comment, context.CancellationToken));
    }

    public override async Task<AccessRequest> Deny(DenyAccessRequestRequest request, ServerCallContext context)
    {
        Audit.AuditScope.NameIfUnnamed(ResourcePaths.AccessRequest(request.Id));
        return ToProto(request.Id, await access.DenyAsync(Actor.Of(VaultInterceptor.Caller(context).Token), request.Id, request.Comment, context.CancellationToken));
    }

    public override async Task<AccessRequest> Revoke(RevokeAccessRequestRequest request, ServerCallContext context)
    {
        Audit.AuditScope.NameIfUnnamed(ResourcePaths.AccessRequest(request.Id));
        var caller = VaultInterceptor.Caller(context).Token;
        var by = caller.Entity.Length > 0 ? caller.Entity : caller.DisplayName.Length > 0 ? caller.DisplayName : caller.Accessor;
        return ToProto(request.Id, await access.RevokeAsync(by, request.Id, request.Comment, context.CancellationToken));
    }

    public override async Task WatchRequests(WatchAccessRequestsRequest request, IServerStreamWriter<AccessRequestEvent> responseStream, ServerCallContext context)
    {
        var signal = new ChangeSignal();
        void OnChanged() => signal.Raise();
        access.Changed += OnChanged;
        try
        {
            // What each request was when last sent: a request is sent again only when it changed.
            var sent = new Dictionary<string, string>(StringComparer.Ordinal);
            var snapshotSent = false;
            while (!context.CancellationToken.IsCancellationRequested)
            {
                foreach (var (id, record) in access.ListRequests(request.State))
                {
                    var seen = $"{record.State}/{record.Approvals.Count}";
                    if (!sent.TryGetValue(id, out var last) || last != seen)
                    {
                        sent[id] = seen;
                        await responseStream.WriteAsync(new AccessRequestEvent { Request = ToProto(id, record) }, context.CancellationToken);
                    }
                }
                if (!snapshotSent)
                {
                    snapshotSent = true;
                    await responseStream.WriteAsync(new AccessRequestEvent { SnapshotComplete = true }, context.CancellationToken);
                }
                await signal.WaitAsync(context.CancellationToken);
            }
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            // The watcher went away.
        }
        finally
        {
            access.Changed -= OnChanged;
        }
    }

    private static Grant ToProto(string name, GrantRecord record) => new()
    {
        Name = name,
        Policies = { record.Policies },
        MaxDuration = Duration.FromTimeSpan(TimeSpan.FromSeconds(record.MaxDurationSeconds)),
        ApproverGroup = record.ApproverGroup,
        ApprovalsRequired = (uint)record.ApprovalsRequired,
        MfaToRequest = record.MfaToRequest,
        MfaToApprove = record.MfaToApprove,
        RequestTtl = Duration.FromTimeSpan(TimeSpan.FromSeconds(record.RequestTtlSeconds)),
        Emergency = record.Emergency,
    };

    private static AccessRequest ToProto(string id, AccessRequestRecord record)
    {
        var proto = new AccessRequest
        {
            Id = id,
            Grant = record.Grant,
            Requester = record.Requester,
            Reason = record.Reason,
            Duration = Duration.FromTimeSpan(TimeSpan.FromSeconds(record.DurationSeconds)),
            State = record.State,
            CreatedAt = ProtoMapping.Time(record.CreatedAtUnixMs),
            ExpiresAt = ProtoMapping.Time(record.ExpiresAtUnixMs),
            ApprovalsRequired = (uint)record.ApprovalsRequired,
            ClosedBy = record.ClosedBy,
            Comment = record.Comment,
            Policies = { record.Policies },
            Emergency = record.Emergency,
        };
        proto.Approvals.AddRange(record.Approvals.Select(a => new Approval { Entity = a.Entity, At = ProtoMapping.Time(a.AtUnixMs), Comment = a.Comment }));
        if (record.ActiveFromUnixMs is { } from)
        {
            proto.ActiveFrom = ProtoMapping.Time(from);
        }
        if (record.EndsAtUnixMs is { } ends)
        {
            proto.EndsAt = ProtoMapping.Time(ends);
        }
        return proto;
    }
}
