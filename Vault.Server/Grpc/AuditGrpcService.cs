using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Server.Audit;

namespace Vault.Server.Grpc;

/// <summary>Reading, verifying, searching and archiving the audit trail.</summary>
public sealed class AuditGrpcService(AuditLog audit) : AuditService.AuditServiceBase
{
    private const int DefaultLimit = 100;
    private const int MaxLimit = 10_000;

    public override Task<TailAuditResponse> Tail(TailAuditRequest request, ServerCallContext context)
    {
        if (request.Limit > MaxLimit)
        {
            throw new ValidationException("limit", $"must be at most {MaxLimit}");
        }
        var limit = request.Limit == 0 ? DefaultLimit : (int)request.Limit;
        DateTimeOffset? since;
        try
        {
            since = request.Since?.ToDateTimeOffset();
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentOutOfRangeException)
        {
            throw new ValidationException("since", "is not a valid timestamp");
        }
        var matching = audit.ReadAll().Where(e =>
            e.Seq > request.AfterSeq
            && e.Path.StartsWith(request.PathPrefix, StringComparison.Ordinal)
            && (request.Accessor.Length == 0 || e.Accessor == request.Accessor)
            && (request.CredentialHmac.Length == 0 || e.CredentialHmac == request.CredentialHmac)
            && (request.Rpc.Length == 0 || e.Rpc.Contains(request.Rpc, StringComparison.OrdinalIgnoreCase))
            && (since is null || e.Time >= since));
        var response = new TailAuditResponse();
        foreach (var e in matching.TakeLast(limit))
        {
            response.Entries.Add(new AuditEntry
            {
                Seq = e.Seq,
                Time = Timestamp.FromDateTimeOffset(e.Time),
                RequestId = e.RequestId,
                Accessor = e.Accessor,
                Rpc = e.Rpc,
                Path = e.Path,
                Outcome = e.Outcome,
                ErrorCode = e.ErrorCode,
                CredentialHmac = e.CredentialHmac,
                Entity = e.Entity ?? "",
                EntityId = e.EntityId ?? "",
                Event = e.Event ?? "",
                PrevHash = e.PrevHash,
                Hash = e.Hash ?? "",
            });
        }
        return Task.FromResult(response);
    }

    public override Task<VerifyAuditResponse> Verify(VerifyAuditRequest request, ServerCallContext context)
    {
        var result = audit.Verify();
        return Task.FromResult(new VerifyAuditResponse
        {
            Ok = result.Ok,
            EntriesChecked = result.EntriesChecked,
            File = result.File,
            Line = result.Line,
            Reason = result.Reason,
        });
    }

    public override async Task<AcknowledgeAuditGapResponse> AcknowledgeGap(AcknowledgeAuditGapRequest request, ServerCallContext context)
    {
        var missing = await audit.AcknowledgeGapAsync(request.LastMissing, VaultInterceptor.Caller(context).Accessor, context.CancellationToken);
        return new AcknowledgeAuditGapResponse { FirstMissing = missing.FirstMissing, LastMissing = missing.LastMissing };
    }

    public override async Task<ArchiveAuditResponse> Archive(ArchiveAuditRequest request, ServerCallContext context)
    {
        var result = await audit.ArchiveAsync(request.KeepFiles, request.BeforeFile, VaultInterceptor.Caller(context).Accessor, context.CancellationToken);
        return new ArchiveAuditResponse { ArchivedFiles = { result.ArchivedFiles }, StartFile = result.StartFile, StartSeq = result.StartSeq };
    }

    public override Task<HashAuditResponse> Hash(HashAuditRequest request, ServerCallContext context) =>
        Task.FromResult(new HashAuditResponse { Hash = audit.HashValue(request.Value) });
}
