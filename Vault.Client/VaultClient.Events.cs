using System.Runtime.CompilerServices;
using Vault.Protocol.V1;

namespace Vault.Client;

public sealed partial class VaultClient
{
    private EventService.EventServiceClient Events => new(_invoker);

    /// <summary>
    /// Streams the vault's security events (rotations, leases that cannot be revoked, audit
    /// failures, seal and unseal, break-glass, answered access requests) for tools and bots: with
    /// <paramref name="afterId"/>, first the events the server still holds after that one; then one
    /// item with <see cref="WatchEventsResponse.Live"/> set; then each event as it happens, until
    /// <paramref name="cancellationToken"/> is cancelled or the server ends the stream. Events carry
    /// no secret.
    /// </summary>
    /// <param name="typePrefix">Only events whose type starts with this (e.g. <c>rotation.</c>); null for all.</param>
    /// <param name="afterId">Resume after this event id (the last one received); null for new events only.</param>
    /// <param name="cancellationToken">Ends the stream.</param>
    /// <returns>The items, as they happen.</returns>
    /// <exception cref="Grpc.Core.RpcException">PermissionDenied without <c>read</c> on <c>sys/events</c>;
    /// FailedPrecondition when the vault is (or becomes) sealed, after the <c>seal.sealed</c> event;
    /// ResourceExhausted when the reader fell more than 1000 events behind; Cancelled when
    /// <paramref name="cancellationToken"/> ends it. After the last two, watch again with <paramref name="afterId"/>.</exception>
    public async IAsyncEnumerable<WatchEventsResponse> WatchEventsAsync(string? typePrefix = null, string? afterId = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var call = Events.WatchEvents(new WatchEventsRequest { TypePrefix = typePrefix ?? "", AfterId = afterId ?? "" }, Stream(cancellationToken));
        while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            yield return call.ResponseStream.Current;
        }
    }
}
