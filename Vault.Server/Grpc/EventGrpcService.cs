using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Server.Telemetry.Events;

namespace Vault.Server.Grpc;

/// <summary>The security event stream for tools and bots (<see cref="SecurityEvents"/>).</summary>
public sealed class EventGrpcService(SecurityEvents events, Crypto.SecurityBarrier barrier) : EventService.EventServiceBase
{
    private const int MaxTypePrefix = 100;

    public override async Task WatchEvents(WatchEventsRequest request, IServerStreamWriter<WatchEventsResponse> responseStream, ServerCallContext context)
    {
        if (request.TypePrefix.Length > MaxTypePrefix)
        {
            throw new ValidationException("type_prefix", $"must be at most {MaxTypePrefix} characters");
        }
        using var subscription = events.Subscribe(request.TypePrefix, request.AfterId);
        if (barrier.IsSealed)
        {
            // Sealed after the interceptor's check and before the subscription: its seal event was missed.
            throw new VaultSealedException();
        }
        var cancellationToken = context.CancellationToken;
        try
        {
            foreach (var held in subscription.Replay)
            {
                await responseStream.WriteAsync(new WatchEventsResponse { Event = ToProto(held) }, cancellationToken);
            }
            await responseStream.WriteAsync(new WatchEventsResponse { Live = true, Missed = subscription.Missed }, cancellationToken);
            while (await subscription.Live.WaitToReadAsync(cancellationToken))
            {
                while (subscription.Live.TryRead(out var next))
                {
                    await responseStream.WriteAsync(new WatchEventsResponse { Event = ToProto(next) }, cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The watcher went away.
            return;
        }
        // Ended by the vault: sealed (FAILED_PRECONDITION), or the watcher fell too far behind.
        if (subscription.EndedBy is { } why)
        {
            throw why;
        }
    }

    internal static Protocol.V1.SecurityEvent ToProto(Telemetry.Events.SecurityEvent published)
    {
        var message = new Protocol.V1.SecurityEvent { Id = published.Id, Type = published.Type, Time = Timestamp.FromDateTimeOffset(published.Time) };
        foreach (var (key, value) in published.Attributes)
        {
            message.Attributes[key] = value;
        }
        return message;
    }
}
