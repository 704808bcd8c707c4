using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Vault.Server;
using Vault.Server.Telemetry.Events;

namespace Vault.Tests.Telemetry;

/// <summary>
/// The hub's promises to publishers and watchers, on the real <see cref="SecurityEvents"/>: a
/// watcher that does not read is ended (RESOURCE_EXHAUSTED for its stream) instead of holding up
/// anyone, resumes from the last event it read, and a seal ends every watcher, whatever it filters.
/// </summary>
public sealed class SecurityEventHubTests
{
    [Fact]
    public void AWatcherThatFallsBehind_IsEnded_WithoutHoldingUpPublishers_AndResumesFromItsLastEvent()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var hub = Hub(services);
        using var slow = hub.Subscribe("", afterId: null);
        using var seals = hub.Subscribe("seal.", afterId: null);

        // Every Publish returns: none waits for the watcher that reads nothing.
        var published = Enumerable.Range(0, SecurityEvents.WatcherBacklog + 5)
            .Select(i => hub.Publish(SecurityEventTypes.RotationSucceeded, ("target", $"t{i}"), ("empty", "")))
            .ToList();

        Assert.IsType<RateLimitedException>(slow.EndedBy);
        Assert.Null(seals.EndedBy);
        var read = new List<SecurityEvent>();
        while (slow.Live.TryRead(out var e))
        {
            read.Add(e);
        }
        Assert.True(slow.Live.Completion.IsCompleted);
        Assert.Equal(published.Take(SecurityEvents.WatcherBacklog).Select(e => e.Id), read.Select(e => e.Id));
        Assert.False(read[0].Attributes.ContainsKey("empty"));
        using var resumed = hub.Subscribe("", read[^1].Id);
        Assert.False(resumed.Missed);
        Assert.Equal(published.Skip(SecurityEvents.WatcherBacklog).Select(e => e.Id), resumed.Replay.Select(e => e.Id));
    }

    [Fact]
    public void ASeal_EndsEveryWatcher_AfterTheSealEventForThoseWhoWatchIt()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var hub = Hub(services);
        using var seals = hub.Subscribe("seal.", afterId: null);
        using var rotations = hub.Subscribe("rotation.", afterId: null);

        hub.Publish(SecurityEventTypes.RotationFailed, ("target", "db"));
        var sealedEvent = hub.Publish(SecurityEventTypes.Sealed);

        Assert.IsType<VaultSealedException>(seals.EndedBy);
        Assert.IsType<VaultSealedException>(rotations.EndedBy);
        Assert.True(seals.Live.TryRead(out var first));
        Assert.Equal(sealedEvent.Id, first.Id);
        Assert.True(rotations.Live.TryRead(out var rotation));
        Assert.Equal(SecurityEventTypes.RotationFailed, rotation.Type);
        Assert.False(rotations.Live.TryRead(out _));
        using var unknown = hub.Subscribe("", "0123456789abcdef0123456789abcdef");
        Assert.True(unknown.Missed);
        Assert.Empty(unknown.Replay);
    }

    private static SecurityEvents Hub(ServiceProvider services) =>
        new(new EventSpool(Options.Create(new EventOptions()), services.GetRequiredService<IMeterFactory>(), NullLogger<EventSpool>.Instance),
            TimeProvider.System, NullLogger<SecurityEvents>.Instance);
}
