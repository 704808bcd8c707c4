using Grpc.Core;
using Grpc.Net.Client;
using Vault.Protocol.V1;

namespace Vault.Tests.Telemetry;

/// <summary>A live watch of the vault's security events (its start marker read), as a bot holds one, for tests of the areas that publish them.</summary>
internal sealed class EventWatch : IDisposable
{
    private readonly AsyncServerStreamingCall<WatchEventsResponse> _call;

    private EventWatch(AsyncServerStreamingCall<WatchEventsResponse> call) => _call = call;

    /// <summary>Watches the events whose type starts with <paramref name="typePrefix"/>; returns once the stream is live.</summary>
    public static async Task<EventWatch> StartAsync(GrpcChannel channel, CallOptions auth, string typePrefix)
    {
        var call = new EventService.EventServiceClient(channel).WatchEvents(new WatchEventsRequest { TypePrefix = typePrefix }, auth);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        Assert.True(await call.ResponseStream.MoveNext(timeout.Token), "the event stream ended before it was live");
        Assert.True(call.ResponseStream.Current.Live);
        return new EventWatch(call);
    }

    /// <summary>The next event (waiting up to a minute).</summary>
    public async Task<SecurityEvent> NextAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        Assert.True(await _call.ResponseStream.MoveNext(timeout.Token), "the event stream ended");
        return _call.ResponseStream.Current.Event;
    }

    /// <summary>The next event that matches, skipping others (waiting up to a minute each).</summary>
    public async Task<SecurityEvent> NextAsync(Func<SecurityEvent, bool> match)
    {
        while (true)
        {
            var next = await NextAsync();
            if (match(next))
            {
                return next;
            }
        }
    }

    public void Dispose() => _call.Dispose();
}
