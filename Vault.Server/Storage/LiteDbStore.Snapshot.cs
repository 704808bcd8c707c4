using LiteDB;

namespace Vault.Server.Storage;

/// <summary>
/// The commit index, and consistent snapshots of every document (online backups, and installing
/// one into an empty data directory).
/// </summary>
public sealed partial class LiteDbStore
{
    // The store's own bookkeeping in the data file, beside the vault's collections.
    private const string MetaCollection = "store_meta";
    private const string CommitIndexId = "commit_index";

    // Group commits acknowledged, counted across restarts: raised under _walLock with each log
    // append, and written into the data file with every apply.
    private long _commitIndex;

    /// <summary>
    /// Where the store stands in its commit order: raised by every acknowledged group commit,
    /// never lowered, across restarts too (it may skip numbers after a crash).
    /// </summary>
    public long CommitIndex => Interlocked.Read(ref _commitIndex);

    /// <summary>
    /// Every document as it stood after commit <see cref="StoreSnapshot.Index"/>: the data file,
    /// held still (the applier waits), overlaid with the changes acknowledged up to that commit,
    /// taken together under the log's lock. Writes go on meanwhile: they only queue up in memory
    /// until the data file has been read (past the applier's bound the writer waits for it).
    /// </summary>
    public StoreSnapshot Snapshot()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        lock (_applyGate)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            KeyValuePair<(string Collection, string Id), PendingChange>[] pending;
            long index;
            lock (_walLock)
            {
                pending = _pending.ToArray();
                index = _commitIndex;
            }
            var documents = new SortedDictionary<(string Collection, string Id), byte[]>(SnapshotOrder.Instance);
            _storeLock.EnterReadLock();
            try
            {
                foreach (var collection in _db.GetCollectionNames())
                {
                    if (collection == MetaCollection)
                    {
                        continue;
                    }
                    foreach (var doc in _db.GetCollection(collection).FindAll())
                    {
                        documents[(collection, doc["_id"].AsString)] = BsonSerializer.Serialize(doc);
                    }
                }
            }
            finally
            {
                _storeLock.ExitReadLock();
            }
            foreach (var ((collection, id), change) in pending)
            {
                if (change.Document is { } document)
                {
                    documents[(collection, id)] = BsonSerializer.Serialize(document.Document);
                }
                else
                {
                    documents.Remove((collection, id));
                }
            }
            return new StoreSnapshot(index, documents.Select(d => new StoredDocument(d.Key.Collection, d.Key.Id, d.Value)).ToList());
        }
    }

    /// <summary>
    /// Writes <paramref name="snapshot"/> as the data file of <paramref name="dataDirectory"/>,
    /// which must hold no store yet, and fsyncs it; a store opened there afterwards continues
    /// the commit order from the snapshot's index.
    /// </summary>
    /// <exception cref="InvalidOperationException">The directory already holds a store.</exception>
    public static void Install(string dataDirectory, StoreSnapshot snapshot)
    {
        var path = Path.Combine(dataDirectory, "vault.db");
        if (File.Exists(path) || Directory.EnumerateFiles(dataDirectory, "wal-*.log").Any())
        {
            throw new InvalidOperationException($"{dataDirectory} already holds a store");
        }
        var connection = new ConnectionString { Filename = path, Connection = ConnectionType.Direct, Collation = Collation.Binary };
        using (var db = new LiteDatabase(connection, Mapper))
        {
            db.CheckpointSize = 0;
            db.BeginTrans();
            foreach (var group in snapshot.Documents.GroupBy(d => d.Collection, StringComparer.Ordinal))
            {
                var collection = db.GetCollection(group.Key);
                collection.EnsureIndex("_id");
                foreach (var document in group)
                {
                    var doc = BsonSerializer.Deserialize(document.Bson);
                    if (doc["_id"] is not { IsString: true } id || id.AsString != document.Id)
                    {
                        throw new InvalidDataException($"a {document.Collection} document's key is not its id");
                    }
                    collection.Insert(doc);
                }
            }
            var meta = db.GetCollection(MetaCollection);
            meta.EnsureIndex("_id");
            meta.Upsert(new BsonDocument { ["_id"] = CommitIndexId, ["value"] = snapshot.Index });
            db.Commit();
            db.Checkpoint();
        }
        using var sync = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        sync.Flush(flushToDisk: true);
    }

    internal static T FromBson<T>(byte[] bson) where T : class => Mapper.ToObject<T>(BsonSerializer.Deserialize(bson));

    internal static object FromBson(Type type, byte[] bson) => Mapper.ToObject(type, BsonSerializer.Deserialize(bson));

    internal static bool HasField(byte[] bson, string field) => BsonSerializer.Deserialize(bson).ContainsKey(field);

    private long StoredCommitIndex() =>
        _db.GetCollection(MetaCollection).FindById(CommitIndexId) is { } doc ? doc["value"].AsInt64 : 0;

    /// <summary>Inside the caller's transaction.</summary>
    private void StoreCommitIndex(long index) =>
        _db.GetCollection(MetaCollection).Upsert(new BsonDocument { ["_id"] = CommitIndexId, ["value"] = index });

    /// <summary>Collections, then ids, as exact strings.</summary>
    private sealed class SnapshotOrder : IComparer<(string Collection, string Id)>
    {
        public static readonly SnapshotOrder Instance = new();

        public int Compare((string Collection, string Id) x, (string Collection, string Id) y)
        {
            var byCollection = string.CompareOrdinal(x.Collection, y.Collection);
            return byCollection != 0 ? byCollection : string.CompareOrdinal(x.Id, y.Id);
        }
    }
}

/// <summary>Every document of a store at one commit.</summary>
/// <param name="Index">The store's commit index the snapshot stands at.</param>
/// <param name="Documents">In collection, then id, order (exact strings).</param>
public sealed record StoreSnapshot(long Index, IReadOnlyList<StoredDocument> Documents);

/// <summary>One stored document as BSON: ciphertext and non-secret metadata, as the store holds it.</summary>
public sealed record StoredDocument(string Collection, string Id, byte[] Bson)
{
    /// <summary>The document read as a record type, as the store would read it.</summary>
    public T As<T>() where T : class => LiteDbStore.FromBson<T>(Bson);
}
