using System.Runtime.CompilerServices;
using Vault.Protocol.V1;

namespace Vault.Client;

public sealed partial class VaultClient
{
    /// <summary>
    /// Streams a target's credential changes: first the current version, then one item per change
    /// (rotation, recovery, an admin replacing it), until <paramref name="cancellationToken"/> is
    /// cancelled or the server ends the stream. Items carry no password: read it with
    /// <see cref="GetTargetCredentialAsync"/>.
    /// </summary>
    /// <param name="name">The target's name.</param>
    /// <param name="cancellationToken">Ends the stream.</param>
    /// <returns>The changes, as they happen.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown target; PermissionDenied without <c>read</c> on <c>rotation/target/&lt;name&gt;/credential</c>; Cancelled when <paramref name="cancellationToken"/> ends it.</exception>
    public async IAsyncEnumerable<TargetChange> WatchTargetAsync(string name, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var call = Targets.WatchTarget(new WatchTargetRequest { Name = name }, Stream(cancellationToken));
        while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            yield return call.ResponseStream.Current;
        }
    }

    /// <summary>
    /// Streams access requests for tools and bots: those in <paramref name="state"/> (null: all) as
    /// they are, then one event with <see cref="AccessRequestEvent.SnapshotComplete"/> set, then a
    /// request again each time it changes, until <paramref name="cancellationToken"/> ends it.
    /// </summary>
    /// <param name="state">Only requests in this state ("pending", …), or null for all.</param>
    /// <param name="cancellationToken">Ends the stream.</param>
    /// <returns>The events, as they happen.</returns>
    /// <exception cref="Grpc.Core.RpcException">PermissionDenied without <c>list</c> on <c>access/request</c>; Cancelled when <paramref name="cancellationToken"/> ends it.</exception>
    public async IAsyncEnumerable<AccessRequestEvent> WatchAccessRequestsAsync(string? state = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var call = AccessRequests.WatchRequests(new WatchAccessRequestsRequest { State = state ?? "" }, Stream(cancellationToken));
        while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            yield return call.ResponseStream.Current;
        }
    }
}
