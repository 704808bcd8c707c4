using System.Collections.Concurrent;
using LiteDB;

namespace Vault.Server.Storage;

/// <summary>
/// One committed version of a document, as the store keeps it in memory, with room for one
/// value derived from it (a verified record, a compiled policy) that lives exactly as long as
/// this version does. Never handed out for mutation: reads map it to a fresh object.
/// </summary>
internal sealed class CachedDocument(BsonDocument document, int size)
{
    public BsonDocument Document { get; } = document;

    /// <summary>What the cache counts against its budget for this entry (0 while not cached).</summary>
    public int Size { get; set; } = size;

    /// <summary>Set at most once per type by whoever derives it first; a race derives it twice, harmlessly.</summary>
    public object? Derived { get; set; }

    /// <summary>Roughly what a document keeps alive: its strings, byte arrays and a slot per value.</summary>
    public static int SizeOf(BsonValue value) => value.Type switch
    {
        BsonType.Document => 64 + value.AsDocument.Sum(p => 48 + (2 * p.Key.Length) + SizeOf(p.Value)),
        BsonType.Array => 32 + value.AsArray.Sum(SizeOf),
        BsonType.String => 24 + (2 * value.AsString.Length),
        BsonType.Binary => 24 + value.AsBinary.Length,
        _ => 24,
    };
}

/// <summary>
/// Committed documents kept in memory, so that a read does not pay for a LiteDB lookup (a
/// snapshot, an index walk and about 30 KB of allocation each). It holds what the data file
/// holds — ciphertext and non-secret metadata — and nothing else.
/// <para>
/// Coherence comes from the store's reader/writer lock: a reader fills an entry while it holds
/// the read lock, from the data file's state it just read; whoever changes the data file evicts
/// every key it touched while still holding the write lock. Keys with changes not yet in the
/// data file are answered from the store's pending changes first, so an entry here is never
/// consulted while it could be older than an acknowledged write.
/// </para>
/// <para>
/// Bounded by an approximate byte budget: once it is spent, further documents are read from
/// LiteDB uncached until evictions make room.
/// </para>
/// </summary>
internal sealed class DocumentCache(long budgetBytes)
{
    // Per entry beyond the document: the dictionary node and the key tuple.
    private const int EntryOverhead = 96;
    private readonly ConcurrentDictionary<(string Collection, string Id), CachedDocument> _entries = new();
    private long _bytes;

    public long Bytes => Interlocked.Read(ref _bytes);

    public int Count => _entries.Count;

    public bool TryGet(string collection, string id, out CachedDocument document) => _entries.TryGetValue((collection, id), out document!);

    /// <summary>Caches a document as the data file holds it. Call only while holding the store's read lock.</summary>
    public CachedDocument? Fill(string collection, string id, BsonDocument document)
    {
        var size = EntryOverhead + (2 * (collection.Length + id.Length)) + CachedDocument.SizeOf(document);
        if (Interlocked.Read(ref _bytes) + size > budgetBytes)
        {
            return null;
        }
        var entry = new CachedDocument(document, size);
        if (!_entries.TryAdd((collection, id), entry))
        {
            return _entries.TryGetValue((collection, id), out var existing) ? existing : null;
        }
        Interlocked.Add(ref _bytes, size);
        return entry;
    }

    /// <summary>
    /// Puts the version just written to the data file in place of whatever was cached (or drops
    /// the key, for a delete or when the budget is spent). Call only while holding the store's write lock.
    /// </summary>
    public void Replace(string collection, string id, CachedDocument? document)
    {
        Evict(collection, id);
        if (document is null)
        {
            return;
        }
        var size = EntryOverhead + (2 * (collection.Length + id.Length)) + CachedDocument.SizeOf(document.Document);
        document.Size = size;
        if (Interlocked.Read(ref _bytes) + size <= budgetBytes && _entries.TryAdd((collection, id), document))
        {
            Interlocked.Add(ref _bytes, size);
        }
    }

    /// <summary>Drops a key whose data-file state changed. Call only while holding the store's write lock.</summary>
    public void Evict(string collection, string id)
    {
        if (_entries.TryRemove((collection, id), out var entry))
        {
            Interlocked.Add(ref _bytes, -entry.Size);
        }
    }
}
