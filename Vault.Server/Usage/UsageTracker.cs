using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Usage;

/// <summary>The last use known of an item; null when none.</summary>
public delegate DateTimeOffset? LastUse(UsageKind kind, string key);

/// <summary>What a last use is recorded for.</summary>
public enum UsageKind
{
    /// <summary>A token presented with a request (keyed by accessor).</summary>
    Token,
    /// <summary>An AppRole secret id logged in with (keyed by <c>role/accessor</c>).</summary>
    SecretId,
    /// <summary>A KV secret read (keyed by path).</summary>
    Secret,
    /// <summary>A person who logged in (keyed by entity id).</summary>
    Person,
    /// <summary>A lease renewed (keyed by lease id).</summary>
    LeaseRenewal,
}

/// <summary>
/// Last use of tokens, secret ids, KV secrets, people and lease renewals, for the zombie-credential
/// report. Cheap on the request path: a use is kept in memory, at most once per
/// <see cref="UsageOptions.Precision"/> per item, and persisted in batches by the reaper's passes
/// (and when the server stops). So the report knows a use within the precision plus a reaper
/// interval; a crash loses at most that much, which can only make an item look older than it is.
/// <para>
/// A stored last use moves back by at most the precision: a use noted within the last precision
/// is written as it is (it is at most that much older than any use stored meanwhile, by another
/// node), and an older one (kept while sealed, or while writes failed) only over an older stored
/// one. So a first pass over 100,000 items read does not look up 100,000 records that are not there.
/// </para>
/// </summary>
public sealed class UsageTracker(IVaultStore store, SecurityBarrier barrier, TimeProvider clock, IOptions<UsageOptions> options, ILogger<UsageTracker> logger)
    : IReaperPass, IHostedService
{
    /// <summary>The id, in the system collection, of the record saying since when uses are tracked.</summary>
    public const string SinceId = "usage_since";

    /// <summary>Uses written in one commit, at most.</summary>
    private const int BatchSize = 2000;

    /// <summary>How often the stored last uses of items that are gone are looked for and dropped.</summary>
    private static readonly TimeSpan SweepInterval = TimeSpan.FromHours(1);

    private long _lastSweepUnixMs;

    // One entry per item used within the precision (the throttle) or whose use is not yet stored.
    private readonly ConcurrentDictionary<(UsageKind Kind, string Key), Use> _uses = new();
    private readonly long _precisionMs = (long)options.Value.Precision.TotalMilliseconds;

    public TimeSpan Precision => options.Value.Precision;

    /// <summary>Notes that <paramref name="key"/> was used now. Lock-free when it was noted within the precision.</summary>
    public void Used(UsageKind kind, string key)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var id = (kind, key);
        if (_uses.TryGetValue(id, out var last) && now - last.AtUnixMs < _precisionMs)
        {
            return;
        }
        _uses[id] = new Use(now, Unsaved: true);
    }

    /// <summary>
    /// Every last use known, in memory or stored, for a report asking about many items: one scan
    /// of the stored records (each seal verified) rather than a lookup per item.
    /// </summary>
    /// <exception cref="DataIntegrityException">A stored record was altered outside the vault.</exception>
    public LastUse LastUses()
    {
        var stored = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (id, record) in store.Scan<UsageRecord>(Collections.Usage))
        {
            RecordSeal.Verify(Hmac, Collections.Usage, id, record.Canonical(), record.Seal);
            stored[id] = record.LastUsedAtUnixMs;
        }
        return (kind, key) =>
        {
            long? last = _uses.TryGetValue((kind, key), out var use) ? use.AtUnixMs : null;
            if (stored.TryGetValue(Id(kind, key), out var at) && (last is null || at > last))
            {
                last = at;
            }
            return last is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
        };
    }

    /// <summary>Since when uses are tracked; null before the first pass after an unseal has recorded it.</summary>
    public DateTimeOffset? TrackedSince() =>
        RecordSeal.Read<UsageSinceRecord>(store, Hmac, Collections.System, SinceId, r => r.Canonical(), r => r.Seal) is { } since
            ? DateTimeOffset.FromUnixTimeMilliseconds(since.SinceUnixMs)
            : null;

    /// <summary>Forgets the stored last use of items that are gone (a revoked token's, a destroyed secret id's).</summary>
    public Task ForgetAsync(IReadOnlyList<(UsageKind Kind, string Key)> items, CancellationToken cancellationToken)
    {
        foreach (var item in items)
        {
            _uses.TryRemove(item, out _);
        }
        return items.Count == 0 ? Task.CompletedTask : store.WriteAsync(tx =>
        {
            foreach (var (kind, key) in items)
            {
                tx.Delete(Collections.Usage, Id(kind, key));
            }
            return true;
        }, cancellationToken);
    }

    /// <summary>Persists the uses noted since the last time. Sealed: they wait in memory for the unseal.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (barrier.IsSealed)
        {
            return;
        }
        if (TrackedSince() is null)
        {
            var since = new UsageSinceRecord { SinceUnixMs = clock.GetUtcNow().ToUnixTimeMilliseconds() };
            since.Seal = RecordSeal.Compute(Hmac, Collections.System, SinceId, since.Canonical());
            await store.WriteAsync(tx =>
            {
                if (tx.Get<UsageSinceRecord>(Collections.System, SinceId) is null)
                {
                    tx.Put(Collections.System, SinceId, since);
                }
                return true;
            }, cancellationToken);
        }
        ForgetOldRecent();
        // Those noted until now; later ones wait for the next pass.
        var unsaved = _uses.Where(e => e.Value.Unsaved).ToList();
        var fresh = clock.GetUtcNow().ToUnixTimeMilliseconds() - _precisionMs;
        foreach (var batch in unsaved.Chunk(BatchSize))
        {
            // A use stays unsaved until it is stored, so a report running meanwhile always sees it.
            await store.WriteAsync(tx =>
            {
                foreach (var ((kind, key), use) in batch)
                {
                    var id = Id(kind, key);
                    if (use.AtUnixMs < fresh
                        && RecordSeal.Read<UsageRecord>(tx, Hmac, Collections.Usage, id, r => r.Canonical(), r => r.Seal) is { } stored
                        && stored.LastUsedAtUnixMs >= use.AtUnixMs)
                    {
                        continue;
                    }
                    var record = new UsageRecord { LastUsedAtUnixMs = use.AtUnixMs };
                    record.Seal = RecordSeal.Compute(Hmac, Collections.Usage, id, record.Canonical());
                    tx.Put(Collections.Usage, id, record);
                }
                return true;
            }, cancellationToken);
            foreach (var (item, use) in batch)
            {
                // Only if no newer use was noted meanwhile: that one waits for the next pass.
                _uses.TryUpdate(item, use with { Unsaved = false }, use);
            }
        }
    }

    async Task IReaperPass.ReapAsync(CancellationToken cancellationToken)
    {
        await FlushAsync(cancellationToken);
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        if (now - _lastSweepUnixMs >= SweepInterval.TotalMilliseconds)
        {
            _lastSweepUnixMs = now;
            await SweepAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Drops the stored last use of every item that is gone — a token revoked, a secret id destroyed
    /// or used up, a secret or person deleted, a lease ended — so the records do not outgrow what they describe.
    /// </summary>
    /// <returns>How many were dropped.</returns>
    public async Task<int> SweepAsync(CancellationToken cancellationToken)
    {
        if (barrier.IsSealed)
        {
            return 0;
        }
        var secretIds = store.List<Auth.SecretIdRecord>(Collections.SecretIds, "")
            .Select(s => $"{s.Value.RoleName}/{s.Value.Accessor}").ToHashSet(StringComparer.Ordinal);
        var people = store.List<Identity.EntityRecord>(Collections.Entities, "")
            .Select(e => e.Value.EntityId).ToHashSet(StringComparer.Ordinal);
        var gone = new List<string>();
        foreach (var (id, _) in store.List<UsageRecord>(Collections.Usage, ""))
        {
            var slash = id.IndexOf('/', StringComparison.Ordinal);
            var key = id[(slash + 1)..];
            var exists = id[..(slash + 1)] switch
            {
                "token/" => store.Get<Auth.TokenAccessorRecord>(Collections.TokenAccessors, key) is not null,
                "secret_id/" => secretIds.Contains(key),
                "kv/" => store.Get<Secrets.SecretMetadataRecord>(Collections.SecretMetadata, key) is not null,
                "person/" => people.Contains(key),
                "lease/" => store.Get<Leases.LeaseRecord>(Collections.Leases, key) is not null,
                _ => false,
            };
            if (!exists)
            {
                gone.Add(id);
            }
        }
        foreach (var chunk in gone.Chunk(BatchSize))
        {
            await store.WriteAsync(tx =>
            {
                foreach (var id in chunk)
                {
                    tx.Delete(Collections.Usage, id);
                }
                return true;
            }, cancellationToken);
        }
        return gone.Count;
    }

    Task IHostedService.StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    async Task IHostedService.StopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await FlushAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            UsageLog.FlushFailed(logger, ex);
        }
    }

    internal static string Id(UsageKind kind, string key) => kind switch
    {
        UsageKind.Token => "token/",
        UsageKind.SecretId => "secret_id/",
        UsageKind.Secret => "kv/",
        UsageKind.Person => "person/",
        UsageKind.LeaseRenewal => "lease/",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    } + key;

    /// <summary>Memory for the throttle only: a stored use older than the precision no longer needs it.</summary>
    private void ForgetOldRecent()
    {
        var before = clock.GetUtcNow().ToUnixTimeMilliseconds() - _precisionMs;
        foreach (var entry in _uses)
        {
            if (!entry.Value.Unsaved && entry.Value.AtUnixMs < before)
            {
                // Only as it was: a use noted meanwhile stays.
                _uses.TryRemove(entry);
            }
        }
    }

    /// <summary>An item's last use noted here, and whether it still has to be stored.</summary>
    private readonly record struct Use(long AtUnixMs, bool Unsaved);

    private byte[] Hmac(string purpose, byte[] value) => barrier.Hmac(purpose, value);
}
