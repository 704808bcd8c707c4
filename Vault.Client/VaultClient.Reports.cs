using Google.Protobuf.WellKnownTypes;
using Vault.Protocol.V1;

namespace Vault.Client;

public sealed partial class VaultClient
{
    private ReportService.ReportServiceClient Reports => new(_invoker);

    /// <summary>
    /// The zombie-credential report: tokens and secret ids unused for <paramref name="unusedFor"/>,
    /// KV secrets not read in it, targets overdue, failing or drifted, check-outs held longer than
    /// <paramref name="checkedOutFor"/>, leases renewed to their maximum, people who have not logged in.
    /// </summary>
    /// <param name="unusedFor">How long without use counts as unused; null for the server's default (30 days).</param>
    /// <param name="checkedOutFor">How long a check-out may last before it is listed; null for the default (8 hours).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The report, items ordered by kind and id.</returns>
    /// <exception cref="Grpc.Core.RpcException">InvalidArgument for a period out of range; PermissionDenied without <c>read</c> on <c>sys/report/credentials</c>.</exception>
    public async Task<CredentialReport> GetCredentialReportAsync(TimeSpan? unusedFor = null, TimeSpan? checkedOutFor = null, CancellationToken cancellationToken = default) =>
        await Reports.CredentialsAsync(new CredentialReportRequest
        {
            UnusedFor = unusedFor is { } unused ? Duration.FromTimeSpan(unused) : null,
            CheckedOutFor = checkedOutFor is { } held ? Duration.FromTimeSpan(held) : null,
        }, Call(cancellationToken)).ConfigureAwait(false);
}
