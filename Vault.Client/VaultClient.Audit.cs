using Google.Protobuf.WellKnownTypes;
using Vault.Protocol.V1;

namespace Vault.Client;

public sealed partial class VaultClient
{
    /// <summary>Reads the newest audit entries that match a filter, oldest first. Needs <c>read</c> on <c>sys/audit</c>.</summary>
    /// <param name="limit">At most this many entries; 0 uses the server's default (100). The server allows at most 10000.</param>
    /// <param name="pathPrefix">Only entries whose resource path starts with this, e.g. <c>kv/apps/</c>; null or empty for all.</param>
    /// <param name="accessor">Only entries made with this token accessor; null or empty for all.</param>
    /// <param name="rpc">Only entries whose method name contains this (case-insensitive), e.g. <c>KvService/Put</c>; null or empty for all.</param>
    /// <param name="since">Only entries at or after this time; null for all.</param>
    /// <param name="afterSeq">Only entries with a sequence number greater than this (to follow the log); 0 for all.</param>
    /// <param name="credentialHmac">Only entries made with the credential whose HMAC (from <see cref="HashAuditValueAsync"/>) this is; null or empty for all.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The entries, oldest first. When more than <paramref name="limit"/> match, the newest ones.</returns>
    /// <exception cref="Grpc.Core.RpcException">InvalidArgument when <paramref name="limit"/> is too large; PermissionDenied without <c>read</c> on <c>sys/audit</c>.</exception>
    public async Task<IReadOnlyList<AuditEntry>> TailAuditAsync(
        uint limit = 0,
        string? pathPrefix = null,
        string? accessor = null,
        string? rpc = null,
        DateTimeOffset? since = null,
        ulong afterSeq = 0,
        string? credentialHmac = null,
        CancellationToken cancellationToken = default)
    {
        var request = new TailAuditRequest
        {
            Limit = limit,
            PathPrefix = pathPrefix ?? "",
            Accessor = accessor ?? "",
            Rpc = rpc ?? "",
            Since = since is { } time ? Timestamp.FromDateTimeOffset(time) : null,
            AfterSeq = afterSeq,
            CredentialHmac = credentialHmac ?? "",
        };
        return (await _audit.TailAsync(request, Call(cancellationToken)).ConfigureAwait(false)).Entries;
    }

    /// <summary>Walks the whole audit chain on the server and reports the first entry that is missing, edited, reordered or forged. Needs <c>read</c> on <c>sys/audit</c>.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether the chain is intact, how many entries were checked, and otherwise the file, 1-based line and reason of the first bad entry.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    /// <remarks>A broken chain is a result, not an error: check <see cref="VerifyAuditResponse.Ok"/>.</remarks>
    public async Task<VerifyAuditResponse> VerifyAuditAsync(CancellationToken cancellationToken = default) =>
        await _audit.VerifyAsync(new VerifyAuditRequest(), Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Computes the HMAC the audit log would hold for <paramref name="value"/>, to search the log for a known secret or token without the log holding it. Needs <c>update</c> on <c>sys/audit/hash</c>.</summary>
    /// <param name="value">The value to hash; it is sent to the server, never logged.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The hex HMAC-SHA256.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task<string> HashAuditValueAsync(string value, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(value);
        return (await _audit.HashAsync(new HashAuditRequest { Value = value }, Call(cancellationToken)).ConfigureAwait(false)).Hash;
    }

    /// <summary>Acknowledges entries found missing from the audit log (see the refusal that named them), so the vault serves again. Needs <c>update</c> on <c>sys/audit/acknowledge</c>.</summary>
    /// <param name="lastMissing">The last missing entry, as the refusal named it.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The gap that was acknowledged.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call (nothing is missing, or another gap is).</exception>
    public async Task<AcknowledgeAuditGapResponse> AcknowledgeAuditGapAsync(ulong lastMissing, CancellationToken cancellationToken = default) =>
        await _audit.AcknowledgeGapAsync(new AcknowledgeAuditGapRequest { LastMissing = lastMissing }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>
    /// Archives the older, closed audit files (retention): the server records where the kept chain
    /// now begins, then moves the files before it into <c>DATA_DIR/audit/archive/</c> (it never
    /// deletes them). Verify then starts at the new start, so archived files may be moved away or
    /// deleted, while a kept file removed by hand is still found. The current file is never
    /// archived. Needs <c>update</c> on <c>sys/audit/archive</c>.
    /// </summary>
    /// <param name="keepFiles">Keep the newest this many files (the current one counts) and archive the rest; 0 when <paramref name="beforeFile"/> is given.</param>
    /// <param name="beforeFile">Or: archive every file named before this one (e.g. <c>audit-000004.jsonl</c>); null when <paramref name="keepFiles"/> is given.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The files moved (none when nothing was older than the kept chain's start), and where the kept chain now begins.</returns>
    /// <exception cref="Grpc.Core.RpcException">InvalidArgument when neither or both of <paramref name="keepFiles"/> and <paramref name="beforeFile"/> are given, or the file is not one of the kept chain;
    /// FailedPrecondition when the chain is broken (nothing is archived); PermissionDenied without <c>update</c> on <c>sys/audit/archive</c>.</exception>
    public async Task<ArchiveAuditResponse> ArchiveAuditAsync(uint keepFiles = 0, string? beforeFile = null, CancellationToken cancellationToken = default) =>
        await _audit.ArchiveAsync(new ArchiveAuditRequest { KeepFiles = keepFiles, BeforeFile = beforeFile ?? "" }, Call(cancellationToken)).ConfigureAwait(false);
}
