namespace Vault.Server.Leases;

/// <summary>
/// When each lease next needs the reaper, and whose token holds it: a pass looks at the leases
/// that are due and at those of tokens that died, not at every lease (with a million leases, a pass
/// over all of them every few seconds took more than a core and held requests up for seconds).
/// <para>
/// <b>Never late.</b> Every save of a lease (<see cref="LeaseStore.Save"/>) notes it, inside its
/// unit of work, at the earliest time its record as saved may need the reaper, keeping the earlier
/// of that and what was noted before; a delete notes it due now, to be dropped. Once the unit has
/// committed and its change is what reads see — or has failed, and changed nothing — the note is
/// settled (<see cref="Settled"/>). Only the reaper moves a time later (<see cref="Reschedule"/>),
/// from the lease as it read it, and only when every note of that lease is settled and none came
/// after its read: a note whose commit is not yet visible keeps the earlier time. A lease gone is
/// dropped the same way. Built from the store on the first pass after an unseal or a promotion
/// (<see cref="Invalidate"/>), merged with what was noted while it was read.
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
    // The time the reaper sleeps until, which a note of an earlier time wakes it from (MinValue: none).
    private long _wakeBefore = long.MinValue;
    private long _generation;
    private bool _loaded;

    /// <param name="CheckAt">When it is taken next (<see cref="Never"/>: not queued, or taken and not yet rescheduled).</param>
    /// <param name="NotedAt">The earliest time noted since the reaper last set its time from a read it could trust.</param>
    /// <param name="Unsettled">Notes whose units have not yet committed (or failed).</param>
    private record struct Entry(long CheckAt, long NotedAt, string Accessor, long Version, int Unsettled);

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

    /// <summary>The earliest time a lease as saved may need the reaper, a creation's grace aside (see <see cref="DueAt"/>).</summary>
    public static long Earliest(LeaseRecord lease) => lease.State switch
    {
        LeaseStates.Active => lease.ExpiresAtUnixMs,
        LeaseStates.Revoking => lease.NextAttemptAtUnixMs ?? 0,
        LeaseStates.Creating => lease.IssuedAtUnixMs,
        _ => Never,
    };

    /// <summary>Forgets everything: the next pass builds the schedule from the store again (a build under way is thrown away).</summary>
    public void Invalidate()
    {
        lock (_lock)
        {
            _generation++;
            _loaded = false;
            _entries = new(StringComparer.Ordinal);
            _queue = new();
            _byAccessor = new(StringComparer.Ordinal);
        }
    }

    /// <summary>
    /// How long a lease may be creating before the reaper ends it (set by the reaper): a creating
    /// lease is noted due then, not at once, so a burst of issues does not wake it for each.
    /// </summary>
    public long CreatingGraceMs { get; set; }

    /// <summary>When a lease as saved needs the reaper: <see cref="Earliest"/>, and a creation's grace added.</summary>
    public long DueAt(LeaseRecord lease) =>
        lease.State == LeaseStates.Creating ? lease.IssuedAtUnixMs + CreatingGraceMs : Earliest(lease);

    /// <summary>A save of <paramref name="lease"/>, not yet committed: looked at no later than its record needs.</summary>
    public void Note(string id, LeaseRecord lease) => Note(id, DueAt(lease), lease.TokenAccessor);

    /// <summary>A delete, not yet committed: looked at now, and dropped once the reaper finds it gone.</summary>
    public void NoteGone(string id)
    {
        lock (_lock)
        {
            // Nothing to end: it does not cut the reaper's sleep short; the entry is dropped on the
            // next pass (due at once, so that pass comes no later than the reaper's shortest gap).
            var accessor = _entries.TryGetValue(id, out var entry) ? entry.Accessor : "";
            NoteLocked(id, 0, accessor, wake: false);
        }
    }

    private void Note(string id, long at, string accessor)
    {
        bool sooner;
        lock (_lock)
        {
            sooner = NoteLocked(id, at, accessor);
        }
        if (sooner)
        {
            DueSooner?.Invoke();
        }
    }

    /// <returns>Whether the reaper should be woken to plan again (this is due before it wakes).</returns>
    private bool NoteLocked(string id, long at, string accessor, bool wake = true)
    {
        var entry = Add(_entries, _queue, _byAccessor, id, at, accessor);
        _entries[id] = entry with { NotedAt = Math.Min(entry.NotedAt, at), Version = ++_version, Unsettled = entry.Unsettled + 1 };
        if (wake && at < _wakeBefore)
        {
            _wakeBefore = long.MinValue;
            return true;
        }
        return false;
    }

    /// <summary>The units that noted <paramref name="ids"/> committed (their changes are what reads see) or failed.</summary>
    public void Settled(IEnumerable<string> ids)
    {
        lock (_lock)
        {
            foreach (var id in ids)
            {
                // Gone from an invalidated schedule: nothing to settle.
                if (_entries.TryGetValue(id, out var entry) && entry.Unsettled > 0)
                {
                    _entries[id] = entry with { Unsettled = entry.Unsettled - 1 };
                }
            }
        }
    }

    /// <summary>
    /// Builds the schedule from every lease in the store, keeping what was noted while it was read.
    /// Thrown away if the schedule was invalidated meanwhile (sealed, or no longer the active node).
    /// </summary>
    public void Load(IEnumerable<KeyValuePair<string, LeaseRecord>> all, Func<LeaseRecord, long> checkAt)
    {
        long generation;
        lock (_lock)
        {
            generation = _generation;
        }
        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        var queue = new PriorityQueue<string, long>();
        var byAccessor = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var (id, lease) in all)
        {
            Add(entries, queue, byAccessor, id, checkAt(lease), lease.TokenAccessor);
        }
        lock (_lock)
        {
            if (generation != _generation)
            {
                return;
            }
            foreach (var (id, noted) in _entries)
            {
                var merged = Add(entries, queue, byAccessor, id, Math.Min(noted.CheckAt, noted.NotedAt), noted.Accessor);
                entries[id] = merged with { NotedAt = noted.NotedAt, Version = noted.Version, Unsettled = noted.Unsettled };
            }
            _entries = entries;
            _queue = queue;
            _byAccessor = byAccessor;
            _loaded = true;
        }
    }

    /// <summary>
    /// Takes the leases due by <paramref name="now"/>, each with its version: they leave the queue
    /// until the reaper reschedules them (or drops them, once gone).
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

    /// <summary>Called (once per <see cref="PlanWake"/>) when a lease is noted due before the time the reaper sleeps until.</summary>
    public Action? DueSooner { get; set; }

    /// <summary>
    /// When the reaper should wake: <paramref name="latest"/>, or the next lease's due time if
    /// sooner, but not before <paramref name="earliest"/>. Until then, a note of a lease due
    /// before that time calls <see cref="DueSooner"/> (not when the time is already the earliest).
    /// </summary>
    public long PlanWake(long latest, long earliest)
    {
        lock (_lock)
        {
            var due = NextDueLocked();
            var at = due < latest ? Math.Max(due, earliest) : latest;
            _wakeBefore = at > earliest ? at : long.MinValue;
            return at;
        }
    }

    private long NextDueLocked()
    {
        while (_queue.TryPeek(out var id, out var at))
        {
            if (_entries.TryGetValue(id, out var entry) && entry.CheckAt == at)
            {
                return at;
            }
            // A stale copy of a time since moved (TakeDue would skip it): not a reason to wake.
            _queue.Dequeue();
        }
        return Never;
    }

    /// <summary>The accessors of the tokens holding leases.</summary>
    public List<string> Accessors()
    {
        lock (_lock)
        {
            return [.. _byAccessor.Keys];
        }
    }

    /// <summary>The leases held by <paramref name="accessor"/>'s token, each with its version.</summary>
    public List<(string Id, long Version)> HeldBy(string accessor)
    {
        lock (_lock)
        {
            return _byAccessor.TryGetValue(accessor, out var ids) ? [.. ids.Select(id => (id, _entries[id].Version))] : [];
        }
    }

    /// <summary>
    /// What the reaper found, having read the entry at <paramref name="version"/>: the lease as it
    /// reads now (<paramref name="now"/>; null: gone) and the time that record needs
    /// (<paramref name="at"/>). Trusted — the time set to it, or a lease gone dropped — only when
    /// no note came after the read and every note is settled; otherwise the earliest of it and
    /// what was noted.
    /// </summary>
    public void Reschedule(string id, long version, LeaseRecord? now, long at)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(id, out var entry))
            {
                return;
            }
            if (entry.Version == version && entry.Unsettled == 0)
            {
                if (now is null)
                {
                    _entries.Remove(id);
                    if (_byAccessor.TryGetValue(entry.Accessor, out var ids) && ids.Remove(id) && ids.Count == 0)
                    {
                        _byAccessor.Remove(entry.Accessor);
                    }
                    return;
                }
                // A copy still queued at another time is skipped when it comes up (TakeDue).
                _entries[id] = entry with { CheckAt = at, NotedAt = Never };
                if (at != Never && at != entry.CheckAt)
                {
                    _queue.Enqueue(id, at);
                }
                return;
            }
            var next = Math.Min(now is null ? Never : at, entry.NotedAt);
            if (next < entry.CheckAt)
            {
                _entries[id] = entry with { CheckAt = next };
                _queue.Enqueue(id, next);
            }
        }
    }

    /// <summary>Adds or updates an entry's time (the earlier one) and token; returns it as it now stands.</summary>
    private static Entry Add(Dictionary<string, Entry> entries, PriorityQueue<string, long> queue, Dictionary<string, HashSet<string>> byAccessor, string id, long at, string accessor)
    {
        var entry = new Entry(Never, Never, accessor, 0, 0);
        if (entries.TryGetValue(id, out var existing))
        {
            entry = existing;
            if (accessor.Length > 0 && existing.Accessor != accessor)
            {
                if (byAccessor.TryGetValue(existing.Accessor, out var old) && old.Remove(id) && old.Count == 0)
                {
                    byAccessor.Remove(existing.Accessor);
                }
                entry = entry with { Accessor = accessor };
            }
        }
        if (at < entry.CheckAt)
        {
            entry = entry with { CheckAt = at };
            queue.Enqueue(id, at);
        }
        entries[id] = entry;
        if (entry.Accessor.Length > 0)
        {
            if (!byAccessor.TryGetValue(entry.Accessor, out var ids))
            {
                byAccessor[entry.Accessor] = ids = new HashSet<string>(StringComparer.Ordinal);
            }
            ids.Add(id);
        }
        return entry;
    }
}
