using System.Collections.Concurrent;
using LiteDB;

namespace Vault.Server.Storage;

/// <summary>
/// One version of a document as the store keeps it in memory, with room for one value derived
/// from it (a verified record, a compiled policy) that lives exactly as long as this version
/// does. A cached version is kept as its BSON bytes — about a third of the memory of a parsed
/// document's object graph — and parsed afresh for each read, so no reader can change what
/// another reads. A pending change keeps its parsed document until it is applied.
/// </summary>
internal sealed class CachedDocument
{
    private readonly byte[]? _bson;
    private readonly BsonDocument? _parsed;

    private CachedDocument(byte[]? bson, BsonDocument? parsed)
    {
        _bson = bson;
        _parsed = parsed;
    }

    /// <summary>A document to keep: serialised once, parsed on every read.</summary>
    public static CachedDocument Compact(BsonDocument document) => new(BsonSerializer.Serialize(document), null);

    /// <summary>
    /// A document kept parsed: a pending change's (applied to LiteDB as is), or one just read from
    /// the data file and not kept. Readers only map it to new objects.
    /// </summary>
    public static CachedDocument Parsed(BsonDocument document) => new(null, document);

    /// <summary>
    /// The document: a fresh parse of a kept version, or a pending change's own instance (which
    /// readers only map to new objects; nothing in the vault writes into a record's byte arrays).
    /// </summary>
    public BsonDocument Document => _parsed ?? BsonSerializer.Deserialize(_bson!);

    /// <summary>What the cache counts against its budget for this entry.</summary>
    public int Size => 160 + (_bson?.Length ?? 0);

    /// <summary>Set by whoever derives it first; a race derives it twice, harmlessly.</summary>
    public object? Derived { get; set; }
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
/// LiteDB uncached until evictions make room. A document larger than 1/1024 of the budget (256 KiB
/// by default) is never kept: a few hundred secrets of a megabyte would otherwise take the room of
/// 100,000 small ones, and a LiteDB lookup costs little beside reading and sending that much.
/// </para>
/// </summary>
/// <param name="budgetBytes">The memory the entries may take, roughly.</param>
/// <param name="uncached">Collections whose documents are never kept (<see cref="Collections.WriteMostly"/>).</param>
internal sealed class DocumentCache(long budgetBytes, IEnumerable<string>? uncached = null)
{
    // Per entry beyond the document: the dictionary node, the key tuple and the key's strings.
    private const int EntryOverhead = 96;
    private readonly ConcurrentDictionary<(string Collection, string Id), CachedDocument> _entries = new();
    private readonly long _largestEntry = budgetBytes / 1024;
    private readonly HashSet<string> _uncached = new(uncached ?? [], StringComparer.Ordinal);
    private long _bytes;

    public long Bytes => Interlocked.Read(ref _bytes);

    public int Count => _entries.Count;

    public bool TryGet(string collection, string id, out CachedDocument document) => _entries.TryGetValue((collection, id), out document!);

    /// <summary>
    /// Caches a document as the data file holds it (unless its collection is never kept: then it is
    /// returned parsed, for this reader alone). Call only while holding the store's read lock.
    /// </summary>
    public CachedDocument Fill(string collection, string id, BsonDocument document)
    {
        if (_uncached.Contains(collection))
        {
            // Just read from the data file, so nobody else holds this instance.
            return CachedDocument.Parsed(document);
        }
        var entry = CachedDocument.Compact(document);
        var size = Charge(collection, id, entry);
        if (size > _largestEntry || Interlocked.Read(ref _bytes) + size > budgetBytes)
        {
            return entry;
        }
        if (!_entries.TryAdd((collection, id), entry))
        {
            return _entries.TryGetValue((collection, id), out var existing) ? existing : entry;
        }
        Interlocked.Add(ref _bytes, size);
        return entry;
    }

    /// <summary>
    /// Puts the version just written to the data file in place of whatever was cached (or drops
    /// the key, for a delete or when the budget is spent). Call only while holding the store's write lock.
    /// </summary>
    /// <param name="bsonBytes">The document's size in BSON, as the write-ahead log wrote it.</param>
    public void Replace(string collection, string id, BsonDocument? document, int bsonBytes)
    {
        Evict(collection, id);
        if (document is null || bsonBytes > _largestEntry || _uncached.Contains(collection))
        {
            // Not serialised just to be dropped.
            return;
        }
        var entry = CachedDocument.Compact(document);
        var size = Charge(collection, id, entry);
        if (size <= _largestEntry && Interlocked.Read(ref _bytes) + size <= budgetBytes && _entries.TryAdd((collection, id), entry))
        {
            Interlocked.Add(ref _bytes, size);
        }
    }

    /// <summary>Drops a key whose data-file state changed. Call only while holding the store's write lock.</summary>
    public void Evict(string collection, string id)
    {
        if (_entries.TryRemove((collection, id), out var entry))
        {
            Interlocked.Add(ref _bytes, -Charge(collection, id, entry));
        }
    }

    /// <summary>What an entry counts against the budget: its bytes, key and bookkeeping.</summary>
    private static int Charge(string collection, string id, CachedDocument entry) => EntryOverhead + (2 * (collection.Length + id.Length)) + entry.Size;
}
