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
}
