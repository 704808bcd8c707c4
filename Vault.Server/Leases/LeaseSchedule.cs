namespace Vault.Server.Leases;

/// <summary>
/// When each lease next needs the reaper, and whose token holds it: a pass looks at the leases
/// that are due and at those of tokens that died, not at every lease (with a million leases, a pass
/// over all of them every few seconds took most of a core and held requests up for seconds).
/// <para>
/// <b>Never late.</b> Every save of a lease (<see cref="LeaseStore.Save"/>) notes it at the earliest
/// time its record as saved may need the reaper, keeping the earlier of that and what was noted
/// before: a save whose unit is not committed after all only has its lease looked at early. Only
/// the reaper, having read the lease as committed, moves its time later (<see cref="Reschedule"/>),
/// and only if no save noted it meanwhile. A lease deleted stays until its time comes, when the
/// reaper finds it gone and drops it. Built from the store on the first pass after an unseal or a
/// promotion (<see cref="Invalidate"/>), merged with what was noted while it was built.
/// </para>
/// </summary>
internal sealed class LeaseSchedule
{
    /// <summary>Not due on any clock: revoked, irrevocable.</summary>
    public const long Never = long.MaxValue;

    private readonly Lock _lock = new();
    private Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private PriorityQueue<string, long> _queue = new();
    private Dictionary<string, HashSet<string>> _byAccessor = new(StringComparer.Ordinal);
    private long _version;
    private bool _loaded;

    private record struct Entry(long CheckAt, string Accessor, long Version);

    /// <summary>Whether the schedule holds every lease (else the next pass builds it first).</summary>
    public bool Loaded
    {
        get
        {
            lock (_lock)
            {
                return _loaded;
            }
        }
    }

    /// <summary>The earliest time a lease as saved may need the reaper (a creation's timeout is the reaper's to add).</summary>
    public static long Earliest(LeaseRecord lease) => lease.State switch
    {
        LeaseStates.Active => lease.ExpiresAtUnixMs,
        LeaseStates.Revoking => lease.NextAttemptAtUnixMs ?? 0,
        LeaseStates.Creating => lease.IssuedAtUnixMs,
        _ => Never,
    };

    /// <summary>Forgets everything: the next pass builds the schedule from the store again.</summary>
    public void Invalidate()
    {
        lock (_lock)
        {
            _loaded = false;
            _entries = new(StringComparer.Ordinal);
            _queue = new();
            _byAccessor = new(StringComparer.Ordinal);
        }
    }

    /// <summary>A save of <paramref name="lease"/>: looked at no later than its record needs.</summary>
    public void Note(string id, LeaseRecord lease)
    {
        var at = Earliest(lease);
        lock (_lock)
        {
            Add(_entries, _queue, _byAccessor, id, at, lease.TokenAccessor, ++_version);
        }
    }

    /// <summary>Builds the schedule from every lease in the store, keeping what was noted while it was read.</summary>
    public void Load(IEnumerable<KeyValuePair<string, LeaseRecord>> all, Func<LeaseRecord, long> checkAt)
    {
        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        var queue = new PriorityQueue<string, long>();
        var byAccessor = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var (id, lease) in all)
        {
            Add(entries, queue, byAccessor, id, checkAt(lease), lease.TokenAccessor, version: 0);
        }
        lock (_lock)
        {
            foreach (var (id, noted) in _entries)
            {
                Add(entries, queue, byAccessor, id, noted.CheckAt, noted.Accessor, noted.Version);
            }
            _entries = entries;
            _queue = queue;
            _byAccessor = byAccessor;
            _loaded = true;
        }
    }

    /// <summary>
    /// Takes the leases due by <paramref name="now"/>, each with the version it was noted at: they
    /// leave the queue until the reaper reschedules them (or drops them, once gone).
    /// </summary>
    public List<(string Id, long Version)> TakeDue(long now)
    {
        var due = new List<(string, long)>();
        lock (_lock)
        {
            while (_queue.TryPeek(out var id, out var at) && at <= now)
            {
                _queue.Dequeue();
                if (_entries.TryGetValue(id, out var entry) && entry.CheckAt == at)
                {
                    // Out of the queue (a stale copy of an earlier time is skipped above).
                    _entries[id] = entry with { CheckAt = Never };
                    due.Add((id, entry.Version));
                }
            }
        }
        return due;
    }

    /// <summary>The accessors of the tokens holding leases.</summary>
    public List<string> Accessors()
    {
        lock (_lock)
        {
            return [.. _byAccessor.Keys];
        }
    }

    /// <summary>The leases held by <paramref name="accessor"/>'s token, each with the version it was noted at.</summary>
    public List<(string Id, long Version)> HeldBy(string accessor)
    {
        lock (_lock)
        {
            return _byAccessor.TryGetValue(accessor, out var ids) ? [.. ids.Select(id => (id, _entries[id].Version))] : [];
        }
    }

    /// <summary>
    /// What the reaper found: the lease as committed now (null: gone), seen by a reaper that read
    /// the entry at <paramref name="version"/>. Its time becomes <paramref name="at"/> if nothing
    /// noted it since; otherwise the earlier of the two. A lease gone is dropped likewise.
    /// </summary>
    public void Reschedule(string id, long version, LeaseRecord? now, long at)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(id, out var entry))
            {
                return;
            }
            var unchanged = entry.Version == version;
            if (now is null)
            {
                if (unchanged)
                {
                    _entries.Remove(id);
                    if (_byAccessor.TryGetValue(entry.Accessor, out var ids) && ids.Remove(id) && ids.Count == 0)
                    {
                        _byAccessor.Remove(entry.Accessor);
                    }
                }
                else if (entry.CheckAt == Never)
                {
                    // Taken, then saved again meanwhile: back in the queue at what that save noted.
                    _queue.Enqueue(id, 0);
                    _entries[id] = entry with { CheckAt = 0 };
                }
                return;
            }
            var next = unchanged ? at : Math.Min(at, entry.CheckAt);
            _entries[id] = entry with { CheckAt = next };
            if (next != Never)
            {
                _queue.Enqueue(id, next);
            }
        }
    }

    private static void Add(Dictionary<string, Entry> entries, PriorityQueue<string, long> queue, Dictionary<string, HashSet<string>> byAccessor, string id, long at, string accessor, long version)
    {
        var queued = false;
        if (entries.TryGetValue(id, out var existing))
        {
            if (existing.Accessor != accessor && byAccessor.TryGetValue(existing.Accessor, out var old) && old.Remove(id) && old.Count == 0)
            {
                byAccessor.Remove(existing.Accessor);
            }
            // In the queue already at that time (a renewal keeps the earlier one).
            queued = existing.CheckAt <= at;
            at = Math.Min(at, existing.CheckAt);
            version = Math.Max(version, existing.Version);
        }
        entries[id] = new Entry(at, accessor, version);
        if (at != Never && !queued)
        {
            queue.Enqueue(id, at);
        }
        if (!byAccessor.TryGetValue(accessor, out var ids))
        {
            byAccessor[accessor] = ids = new HashSet<string>(StringComparer.Ordinal);
        }
        ids.Add(id);
    }
}
