using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Vault.Server.Telemetry.Events;

/// <summary>
/// Where security events are published, and what hands them on: first to the webhook's durable
/// spool (on disk before <see cref="Publish"/> returns, when a webhook is configured), then to every
/// watcher (<c>WatchEvents</c>). Publishing never blocks on a watcher: each has a bounded backlog,
/// and one that falls further behind is ended (it resumes with the last id it got). The last
/// <see cref="Recent"/> events are kept in memory so a watcher that was ended (a seal, a lost
/// connection) can resume without a gap.
/// </summary>
public sealed class SecurityEvents(EventSpool spool, TimeProvider clock, ILogger<SecurityEvents> logger)
{
    /// <summary>How many of the newest events are kept for watchers that resume.</summary>
    public const int Recent = 1000;

    /// <summary>How many events a watcher may be behind before its stream is ended.</summary>
    public const int WatcherBacklog = 1000;

    // One lock for the order of everything: the spool's files, the recent events and every
    // watcher's stream see events in the same order.
    private readonly Lock _lock = new();
    private readonly Queue<SecurityEvent> _recent = new();
    private readonly List<EventSubscription> _watchers = [];

    /// <summary>Publishes an event of <paramref name="type"/> now; attributes with no value are left out.</summary>
    /// <remarks>Never throws for a spool that cannot be written (the event still reaches watchers; the spool logs and counts it).</remarks>
    public SecurityEvent Publish(string type, params ReadOnlySpan<(string Key, string? Value)> attributes)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in attributes)
        {
            if (!string.IsNullOrEmpty(value))
            {
                map[key] = value;
            }
        }
        var published = SecurityEvent.Create(type, clock.GetUtcNow(), map);
        lock (_lock)
        {
            spool.Add(published);
            _recent.Enqueue(published);
            if (_recent.Count > Recent)
            {
                _recent.Dequeue();
            }
            _watchers.RemoveAll(watcher => !watcher.Offer(published));
        }
        EventLog.Published(logger, published.Type, published.Id);
        return published;
    }

    /// <summary>
    /// A new watcher of the events whose type starts with <paramref name="typePrefix"/>: with
    /// <paramref name="afterId"/>, the held events after that one come first (<see cref="EventSubscription.Replay"/>).
    /// Dispose it when the watcher goes.
    /// </summary>
    public EventSubscription Subscribe(string typePrefix, string? afterId)
    {
        lock (_lock)
        {
            IReadOnlyList<SecurityEvent> replay = [];
            var missed = false;
            if (!string.IsNullOrEmpty(afterId))
            {
                var held = _recent.ToList();
                var at = held.FindIndex(e => e.Id == afterId);
                missed = at < 0;
                replay = held.Skip(at + 1).Where(e => !missed && e.Type.StartsWith(typePrefix, StringComparison.Ordinal)).ToList();
            }
            var subscription = new EventSubscription(this, typePrefix, replay, missed);
            _watchers.Add(subscription);
            return subscription;
        }
    }

    internal void Unsubscribe(EventSubscription subscription)
    {
        lock (_lock)
        {
            _watchers.Remove(subscription);
        }
    }
}

/// <summary>One watcher's view of the events: what it missed and asked for (<see cref="Replay"/>), then <see cref="Live"/>.</summary>
public sealed class EventSubscription : IDisposable
{
    private readonly SecurityEvents _hub;
    private readonly string _typePrefix;
    private readonly Channel<SecurityEvent> _live = Channel.CreateBounded<SecurityEvent>(new BoundedChannelOptions(SecurityEvents.WatcherBacklog)
    {
        SingleReader = true,
        // TryWrite fails when full instead of waiting: publishers never wait for a watcher.
        FullMode = BoundedChannelFullMode.Wait,
    });

    internal EventSubscription(SecurityEvents hub, string typePrefix, IReadOnlyList<SecurityEvent> replay, bool missed)
    {
        _hub = hub;
        _typePrefix = typePrefix;
        Replay = replay;
        Missed = missed;
    }

    /// <summary>The held events after the one the watcher resumed from, oldest first.</summary>
    public IReadOnlyList<SecurityEvent> Replay { get; }

    /// <summary>The watcher resumed from an event no longer held: some may not be sent.</summary>
    public bool Missed { get; }

    /// <summary>New events, as they are published; completed when the watcher is ended (<see cref="EndedBy"/>).</summary>
    public ChannelReader<SecurityEvent> Live => _live.Reader;

    /// <summary>Why the stream was ended by the vault (a seal, a watcher too far behind); null while it goes on.</summary>
    public VaultException? EndedBy { get; private set; }

    /// <returns>False when this watcher is done and takes no more events.</returns>
    internal bool Offer(SecurityEvent published)
    {
        if (published.Type.StartsWith(_typePrefix, StringComparison.Ordinal) && !_live.Writer.TryWrite(published))
        {
            End(new RateLimitedException($"this watcher fell more than {SecurityEvents.WatcherBacklog} events behind; watch again with after_id set to the last event received"));
            return false;
        }
        if (published.Type == SecurityEventTypes.Sealed)
        {
            // A sealed vault serves nothing: the stream ends once this event has been sent.
            End(new VaultSealedException());
            return false;
        }
        return true;
    }

    private void End(VaultException why)
    {
        EndedBy = why;
        _live.Writer.TryComplete();
    }

    public void Dispose() => _hub.Unsubscribe(this);
}
