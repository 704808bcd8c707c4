using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Server.Usage;

namespace Vault.Server.Grpc;

/// <summary>Reports over the whole vault.</summary>
public sealed class ReportGrpcService(CredentialReports reports) : ReportService.ReportServiceBase
{
    public override Task<CredentialReport> Credentials(CredentialReportRequest request, ServerCallContext context)
    {
        var result = reports.Build(request.UnusedFor.AsTimeSpan("unused_for"), request.CheckedOutFor.AsTimeSpan("checked_out_for"));
        var response = new CredentialReport
        {
            GeneratedAt = Timestamp.FromDateTimeOffset(result.GeneratedAt),
            UnusedFor = Duration.FromTimeSpan(result.UnusedFor),
            CheckedOutFor = Duration.FromTimeSpan(result.CheckedOutFor),
            TrackedSince = Timestamp.FromDateTimeOffset(result.TrackedSince),
            Precision = Duration.FromTimeSpan(result.Precision),
        };
        foreach (var item in result.Items)
        {
            var proto = new Vault.Protocol.V1.ReportItem { Kind = item.Kind, Id = item.Id, Reason = item.Reason, Detail = item.Detail, Prunable = item.Prunable };
            if (item.CreatedAt is { } created)
            {
                proto.CreatedAt = Timestamp.FromDateTimeOffset(created);
            }
            if (item.LastUsedAt is { } used)
            {
                proto.LastUsedAt = Timestamp.FromDateTimeOffset(used);
            }
            response.Items.Add(proto);
        }
        return Task.FromResult(response);
    }
}
