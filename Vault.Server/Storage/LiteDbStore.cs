using System.Collections.Concurrent;
using LiteDB;
using Microsoft.Extensions.Logging;

namespace Vault.Server.Storage;

/// <summary>
/// LiteDB in direct mode, one instance per process, behind a write-ahead log and a read cache.
/// <list type="bullet">
/// <item>All writes go through one writer thread that runs whatever is queued as one group,
/// appends the group's changes to the <see cref="WriteAheadLog"/>, fsyncs once, and only then
/// acknowledges every unit of work in it (group commit).</item>
/// <item>Acknowledged changes wait in memory (<c>_pending</c>), where reads find them first, until
/// an applier thread writes them into LiteDB in one large transaction, checkpoints, fsyncs the
/// data file and deletes the log segments they came from. LiteDB's commit and checkpoint cost
/// about a millisecond each; paid once per thousands of changes instead of once per group.</item>
/// <item>Reads are served from the pending changes, then the <see cref="DocumentCache"/>, then
/// LiteDB. On start-up, segments left by a crash are replayed into the data file.</item>
/// </list>
/// </summary>
public sealed partial class LiteDbStore : IVaultStore, IUnitBase
{
    private const int MaxBatch = 512;
    /// <summary>Default memory for <see cref="DocumentCache"/>: room for about 100,000 small secrets.</summary>
    public const long DefaultCacheBytes = 256L * 1024 * 1024;
    // Pending changes that wake the applier before its interval; and the most allowed before
    // the writer waits for it (so memory stays bounded when the disk is slower than the clients).
    private const int ApplyThreshold = 2048;
    private const int MaxPending = 16384;
    // The same two bounds in bytes of pending documents (a few large secrets weigh more than
    // thousands of small ones).
    private const long ApplyThresholdBytes = 4L * 1024 * 1024;
    private const long MaxPendingBytes = 256L * 1024 * 1024;
    /// <summary>
    /// The most the write-ahead log may hold on disk before the writer waits for the applier to
    /// move it into the data file (the changes above count each document once however often it
    /// changed; the log holds every change). The applier is woken at a quarter of it.
    /// </summary>
    public const long DefaultMaxLogBytes = 512L * 1024 * 1024;
    private const int ReplayTransactionSize = 4096;
    private static readonly TimeSpan DefaultApplyInterval = TimeSpan.FromMilliseconds(200);
    // The one BSON mapping of the vault's records, shared by every store (PostgreSQL holds the same BSON).
    internal static readonly BsonMapper Mapper = CreateMapper();

    // Opened once. LiteDB's engine refuses every call after a failed write, so the applier never
    // hands it more than the free space allows (SpaceToApply); see _engineBroken.
    private readonly LiteDatabase _db;
    // A second handle on the data file, used only to fsync it: fsync flushes the file, not
    // the descriptor, so this covers what LiteDB wrote through its own handles.
    private readonly FileStream _dataSync;
    private readonly DocumentCache _cache;
    private readonly ConcurrentDictionary<(string Collection, string Id), PendingChange> _pending = new();
    private readonly WriteAheadLog _wal;
    // Held while a group is appended and published, and while the applier takes its snapshot
    // and rolls the log: every change in a closed segment is in the snapshot.
    private readonly Lock _walLock = new();
    // One ApplyPending at a time: the applier's and a caller's Flush.
    private readonly Lock _applyGate = new();
    private readonly BlockingCollection<IPendingWrite> _queue = new();
    private readonly Thread _writer;
    private readonly Thread _applier;
    private readonly AutoResetEvent _wakeApplier = new(false);
    private readonly AutoResetEvent _applied = new(false);
    private readonly ILogger _logger;
    private readonly string _directory;
    private readonly string _path;
    private readonly DiskReserve _reserve;
    private readonly TimeSpan _applyInterval;
    private readonly long _maxLogBytes;
    // LiteDB reads share this lock; changing the data file takes it alone (see ApplyPending).
    private readonly ReaderWriterLockSlim _storeLock = new();
    private volatile bool _stopping;
    private int _disposed;
    private long _commits;
    private long _writes;
    private long _applies;
    private long _appliedChanges;
    // BSON bytes of the documents in _pending: added when a change is published, taken off when
    // it is replaced or applied.
    private long _pendingBytes;
    private volatile StorageFailedException? _failure;
    private ICommitParticipant? _participant;
    // The document types the store may read and write (null: any, for a store opened on its own).
    private readonly HashSet<Type>? _documentTypes;
    // LiteDB could not roll back a failed commit. Its engine then holds a transaction that
    // throws when disposed, and LiteDB 5 disposes it again from a finalizer, which ends the
    // process (LiteDB issues 2561, 2586): such an engine is never disposed, only kept alive.
    private bool _engineBroken;
    private static readonly List<LiteDatabase> BrokenEngines = [];

    /// <param name="dataDirectory">Where vault.db and the write-ahead log live.</param>
    /// <param name="logger">Store log.</param>
    /// <param name="documentTypes">Every document type the store will read or write (the types
    /// nested in their properties are found here). LiteDB's mapper builds a type's map lazily and
    /// not thread-safely: two threads meeting a type for the first time can see a half-built map
    /// ("Collection was modified"), so maps are built here, before any request runs, and any other
    /// type is refused every time it is used, not only when two threads race. Null: any type
    /// (a store opened on its own, by a tool or a test).</param>
    /// <param name="collections">Every collection the store will use. They are created here:
    /// LiteDB 5 corrupts a reader's snapshot ("page type must be collection page") when a
    /// collection is created by a commit while another thread reads it.</param>
    /// <param name="cacheBytes">Memory for documents kept to serve reads (0: none).</param>
    /// <param name="uncached">Collections whose documents are not kept to serve reads (<see cref="Collections.WriteMostly"/>).</param>
    /// <param name="reserve">Space held back on the data directory's filesystem, set aside here
    /// before anything else is written (none if null). While it is given up, writes are refused.</param>
    /// <exception cref="DiskFullException">The filesystem cannot hold the reserve.</exception>
    public LiteDbStore(string dataDirectory, ILogger<LiteDbStore> logger, IEnumerable<Type>? documentTypes = null, IEnumerable<string>? collections = null, long cacheBytes = DefaultCacheBytes, DiskReserve? reserve = null, IEnumerable<string>? uncached = null)
        : this(dataDirectory, logger, documentTypes, collections, cacheBytes, DefaultApplyInterval, reserve, uncached: uncached)
    {
    }

    /// <param name="applyInterval">How long acknowledged changes may wait before the applier moves them into the data file (tests stretch it to hold them in the log).</param>
    /// <param name="maxLogBytes">The most the write-ahead log may hold on disk (<see cref="DefaultMaxLogBytes"/>; tests make it small).</param>
    internal LiteDbStore(string dataDirectory, ILogger<LiteDbStore> logger, IEnumerable<Type>? documentTypes, IEnumerable<string>? collections, long cacheBytes, TimeSpan applyInterval, DiskReserve? reserve = null, long maxLogBytes = DefaultMaxLogBytes, IEnumerable<string>? uncached = null)
    {
        _logger = logger;
        _applyInterval = applyInterval;
        _maxLogBytes = maxLogBytes;
        _reserve = reserve ?? DiskReserve.None(dataDirectory);
        _reserve.FullChanged += _ => FailingChanged?.Invoke(Failure is not null);
        _cache = new DocumentCache(cacheBytes, uncached);
        Telemetry.ProcessMetrics.TrackCache(this, () => _cache.Bytes);
        _documentTypes = PrepareTypes(documentTypes);
        Directory.CreateDirectory(dataDirectory);
        _reserve.Claim();
        _directory = dataDirectory;
        var path = Path.Combine(dataDirectory, "vault.db");
        _path = path;
        // File mode, not LiteDB's Stream constructor: with a caller's stream LiteDB shares one
        // stream between concurrent readers, and reads racing a commit corrupt pages.
        // Names are exact byte strings: LiteDB's default collation (the current culture, ignoring
        // case) made "kv/ABC" and "kv/abc" one document once a change reached the data file.
        // A data file keeps the collation it was made with (LiteDB refuses to open one whose
        // collation differs from the connection's), so only a new file is given one here.
        var connection = new ConnectionString { Filename = path, Connection = ConnectionType.Direct };
        if (!File.Exists(path))
        {
            connection.Collation = Collation.Binary;
        }
        _db = new LiteDatabase(connection, Mapper);
        EnsureOrdinalCollation(path);
        // Checkpoints happen only in ApplyPending, under the write lock.
        _db.CheckpointSize = 0;
        foreach (var collection in (collections ?? []).Append(MetaCollection))
        {
            _db.GetCollection(collection).EnsureIndex("_id");
        }
        _dataSync = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, bufferSize: 1);
        try
        {
            _wal = WriteAheadLog.Create(dataDirectory, Replay(dataDirectory));
        }
        catch
        {
            // Nothing may outlive a store that failed to open: a LiteDB transaction left behind
            // would be finalised after its engine is gone, and crash the process.
            try
            {
                _db.Rollback();
            }
            catch (Exception rollbackError)
            {
                StoreLog.RollbackFailed(_logger, rollbackError);
            }
            _db.Dispose();
            _dataSync.Dispose();
            throw;
        }
        _writer = new Thread(WriterLoop) { Name = "vault-store-writer", IsBackground = true };
        _applier = new Thread(ApplierLoop) { Name = "vault-store-applier", IsBackground = true };
        _writer.Start();
        _applier.Start();
    }

    public T? Get<T>(string collection, string id) where T : class =>
        Lookup(collection, Require<T>(id)) is { } found ? Mapper.ToObject<T>(found.Document) : null;

    /// <summary>Refuses a document type that was not declared (passes <paramref name="id"/> through).</summary>
    private string Require<T>(string id)
    {
        RequireDeclared<T>(_documentTypes);
        return id;
    }

    HashSet<Type>? IUnitBase.DocumentTypes => _documentTypes;

    List<KeyValuePair<string, T>> IUnitBase.ListWithin<T>(string collection, string idPrefix, int limit, params IEnumerable<KeyValuePair<string, BsonDocument?>>[] newer) =>
        ListWithin<T>(collection, idPrefix, limit, newer);

    /// <summary>
    /// The declared document types and every type nested in them, each mapped now (LiteDB builds a
    /// type's map lazily and not thread-safely); null when any type is allowed.
    /// </summary>
    internal static HashSet<Type>? PrepareTypes(IEnumerable<Type>? documentTypes)
    {
        var types = documentTypes is null ? null : WithNested(documentTypes);
        lock (Mapper)
        {
            foreach (var type in types ?? [])
            {
                // LiteDB takes a property named Id, _id or <Type>Id (or marked [BsonId]) as the
                // document's key, which the store sets to the record's own id: the property would
                // read back as the key, and a seal over it would fail. Refused here, at start-up.
                if (type.GetProperties().FirstOrDefault(p => p.Name is "Id" or "_id" || p.Name == type.Name + "Id" || p.IsDefined(typeof(BsonIdAttribute), inherit: true)) is { } key)
                {
                    throw new InvalidOperationException($"{type.FullName}.{key.Name} would be stored as the document's key: name the property otherwise");
                }
                Mapper.ToObject(type, Mapper.ToDocument(type, Activator.CreateInstance(type)!));
            }
        }
        return types;
    }

    /// <summary>Refuses a type outside <paramref name="known"/> (null: any), naming the fix.</summary>
    internal static void RequireDeclared<T>(HashSet<Type>? known)
    {
        if (known is not null && !known.Contains(typeof(T)))
        {
            throw new InvalidOperationException($"{typeof(T).FullName} is not a stored document type: declare it with AddStoredDocuments in its area's registration");
        }
    }

    /// <summary><paramref name="roots"/> and every class type reachable through their properties (lists and nullables included).</summary>
    private static HashSet<Type> WithNested(IEnumerable<Type> roots)
    {
        var found = new HashSet<Type>();
        var pending = new Queue<Type>(roots);
        while (pending.TryDequeue(out var type))
        {
            if (!found.Add(type))
            {
                continue;
            }
            foreach (var property in type.GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance))
            {
                var candidate = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
                if (candidate.IsGenericType && candidate.GetGenericTypeDefinition() == typeof(List<>))
                {
                    candidate = candidate.GetGenericArguments()[0];
                }
                if (candidate.IsClass && candidate != typeof(string) && !candidate.IsArray && !candidate.IsGenericType
                    && candidate.Namespace?.StartsWith("Vault.", StringComparison.Ordinal) == true)
                {
                    pending.Enqueue(candidate);
                }
            }
        }
        return found;
    }

    /// <summary>
    /// Like <see cref="Get{T}"/>, but keeps what <paramref name="derive"/> makes of the document
    /// (a verified record, a compiled policy) until the document changes, so it is derived once
    /// per version rather than once per read (per read in a write-mostly collection, whose documents
    /// are not kept). The result is shared between callers: never mutate
    /// it. If <paramref name="derive"/> throws, nothing is kept and the exception propagates.
    /// </summary>
    public TDerived? GetDerived<T, TDerived>(string collection, string id, Func<T, TDerived> derive) where T : class where TDerived : class
    {
        if (Lookup(collection, Require<T>(id)) is not { } found)
        {
            return null;
        }
        if (found.Derived is TDerived derived)
        {
            return derived;
        }
        var value = derive(Mapper.ToObject<T>(found.Document));
        found.Derived = value;
        return value;
    }

    public IReadOnlyList<KeyValuePair<string, T>> List<T>(string collection, string idPrefix, int limit = int.MaxValue) where T : class =>
        ListWithin<T>(collection, Require<T>(idPrefix), limit);

    public IEnumerable<KeyValuePair<string, T>> Scan<T>(string collection, int pageSize = 1000) where T : class
    {
        RequireDeclared<T>(_documentTypes);
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        string? after = null;
        while (true)
        {
            List<KeyValuePair<string, T>> page;
            bool last;
            _storeLock.EnterReadLock();
            try
            {
                var col = _db.GetCollection(collection);
                var stored = (after is null ? col.Query() : col.Query().Where(Query.GT("_id", after)))
                    .OrderBy("_id").Limit(pageSize).ToList()
                    .Select(d => KeyValuePair.Create(d["_id"].AsString, d)).ToList();
                last = stored.Count < pageSize;
                // Changes not yet in the data file, within what this page covers (the last page: all after it).
                var upper = last ? null : stored[^1].Key;
                var pending = PendingUnder(collection, "")
                    .Where(p => (after is null || string.CompareOrdinal(p.Key, after) > 0) && (upper is null || string.CompareOrdinal(p.Key, upper) <= 0));
                page = Merge<T>(int.MaxValue, stored, pending);
                after = upper;
            }
            finally
            {
                _storeLock.ExitReadLock();
            }
            foreach (var document in page)
            {
                yield return document;
            }
            if (last)
            {
                yield break;
            }
        }
    }

    /// <summary>Documents held by the read cache and their approximate size.</summary>
    public (int Documents, long Bytes) CacheStatistics => (_cache.Count, _cache.Bytes);

    /// <summary>Documents written into (or deleted from) the data file by the applier: a document changed many times between two passes counts once.</summary>
    public long AppliedChanges => Interlocked.Read(ref _appliedChanges);

    /// <summary>
    /// Units of work acknowledged, the log appends (fsyncs) they took — fewer commits than
    /// writes is group commit at work — and the times pending changes were moved into the data file.
    /// </summary>
    public (long Writes, long Commits, long Applies) Statistics => (Interlocked.Read(ref _writes), Interlocked.Read(ref _commits), Interlocked.Read(ref _applies));

    /// <summary>
    /// BSON bytes of the acknowledged changes not yet applied to the data file: memory the store
    /// holds until its applier catches up. Request admission counts it against its bound.
    /// </summary>
    public long PendingBytes => Interlocked.Read(ref _pendingBytes);

    public string? Failure => _failure?.Message ?? _reserve.Failure;

    event Action<IReadOnlyCollection<(string Collection, string Id)>>? IVaultStore.ChangedElsewhere
    {
        add { }
        remove { }
    }

    /// <summary>The only node: every commit it acknowledged is already what it reads.</summary>
    public Task<bool> WaitForIndexAsync(long index, TimeSpan timeout, CancellationToken cancellationToken) => Task.FromResult(CommitIndex >= index);

    public event Action<bool>? FailingChanged;

    public Task<TResult> WriteAsync<TResult>(Func<IStoreWriter, TResult> work, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_failure is { } failure)
        {
            return Task.FromException<TResult>(failure);
        }
        if (_reserve.IsFull)
        {
            return Task.FromException<TResult>(_reserve.Refusal());
        }
        var pending = new PendingWrite<TResult>(work, CommitContext.Current);
        _queue.Add(pending, CancellationToken.None);
        return pending.Task;
    }

    public void Enlist(ICommitParticipant participant)
    {
        if (Interlocked.CompareExchange(ref _participant, participant, null) is not null && _participant != participant)
        {
            throw new InvalidOperationException("the store already has a commit participant");
        }
    }

    private static readonly KeyValuePair<string, object?> Hit = new("result", "hit");
    private static readonly KeyValuePair<string, object?> Miss = new("result", "miss");

    /// <summary>The newest acknowledged state of a document: a pending change, the cache, or the data file.</summary>
    private CachedDocument? Lookup(string collection, string id)
    {
        if (_pending.TryGetValue((collection, id), out var change))
        {
            Telemetry.ProcessMetrics.CacheLookups.Add(1, Hit);
            return change.Document;
        }
        if (_cache.TryGet(collection, id, out var cached))
        {
            Telemetry.ProcessMetrics.CacheLookups.Add(1, Hit);
            return cached;
        }
        _storeLock.EnterReadLock();
        try
        {
            // Looked at again under the lock: the applier may have moved it to the data file
            // (and the cache) since the first look.
            if (_pending.TryGetValue((collection, id), out change))
            {
                Telemetry.ProcessMetrics.CacheLookups.Add(1, Hit);
                return change.Document;
            }
            if (_cache.TryGet(collection, id, out cached))
            {
                Telemetry.ProcessMetrics.CacheLookups.Add(1, Hit);
                return cached;
            }
            Telemetry.ProcessMetrics.CacheLookups.Add(1, Miss);
            var doc = _db.GetCollection(collection).FindById(id);
            return doc is null ? null : _cache.Fill(collection, id, doc);
        }
        finally
        {
            _storeLock.ExitReadLock();
        }
    }

    /// <summary>
    /// The data file's documents whose id starts with <paramref name="idPrefix"/>, compared as
    /// exact strings. Not LiteDB's <c>StartsWith</c>: that is a LIKE, where <c>_</c> and <c>%</c>
    /// in a name are wildcards. An index range [prefix, successor) holds exactly the ids that
    /// start with the prefix under the ordinal collation; the filter states the rule itself.
    /// </summary>
    private List<KeyValuePair<string, BsonDocument>> ListDocuments(string collection, string idPrefix)
    {
        var col = _db.GetCollection(collection);
        var docs = idPrefix.Length == 0
            ? col.FindAll()
            : PrefixSuccessor(idPrefix) is { } upper ? col.Find(Query.Between("_id", idPrefix, upper)) : col.Find(Query.GTE("_id", idPrefix));
        return docs.Select(d => KeyValuePair.Create(d["_id"].AsString, d))
            .Where(d => d.Key.StartsWith(idPrefix, StringComparison.Ordinal))
            .ToList();
    }

    /// <summary>The least string greater than every string that starts with <paramref name="prefix"/>; null if there is none.</summary>
    internal static string? PrefixSuccessor(string prefix)
    {
        var end = prefix.Length;
        while (end > 0 && prefix[end - 1] == char.MaxValue)
        {
            end--;
        }
        return end == 0 ? null : string.Concat(prefix.AsSpan(0, end - 1), ((char)(prefix[end - 1] + 1)).ToString());
    }

    /// <summary>
    /// Data files written before names were compared exactly use LiteDB's default collation
    /// (culture-aware, case-insensitive). Rebuilding re-inserts every document under the ordinal
    /// collation; LiteDB's rebuild keeps the old file as a backup until it is done, and that
    /// backup is then deleted, because it would keep data keys that a later destroy erases.
    /// </summary>
    private void EnsureOrdinalCollation(string path)
    {
        var current = _db.Pragma("COLLATION").AsString;
        if (current == Collation.Binary.ToString())
        {
            return;
        }
        StoreLog.MigratingCollation(_logger, current);
        _db.Rebuild(new LiteDB.Engine.RebuildOptions { Collation = Collation.Binary });
        var migrated = _db.Pragma("COLLATION").AsString;
        if (migrated != Collation.Binary.ToString())
        {
            throw new IOException($"data file {path} still compares names as {migrated} after rebuilding it");
        }
        foreach (var backup in Directory.GetFiles(Path.GetDirectoryName(path)!, Path.GetFileNameWithoutExtension(path) + "-backup*"))
        {
            File.Delete(backup);
        }
        StoreLog.MigratedCollation(_logger);
    }

    private IEnumerable<KeyValuePair<string, BsonDocument?>> PendingUnder(string collection, string idPrefix)
    {
        if (_pending.IsEmpty)
        {
            return [];
        }
        return _pending
            .Where(p => p.Key.Collection == collection && p.Key.Id.StartsWith(idPrefix, StringComparison.Ordinal))
            .Select(p => KeyValuePair.Create(p.Key.Id, p.Value.Document?.Document))
            .ToList();
    }

    /// <summary>Stored documents overlaid with newer changes (null: deleted), in id order.</summary>
    internal static List<KeyValuePair<string, T>> Merge<T>(int limit, List<KeyValuePair<string, BsonDocument>> stored, params IEnumerable<KeyValuePair<string, BsonDocument?>>[] newer)
        where T : class
    {
        var merged = new SortedDictionary<string, BsonDocument>(StringComparer.Ordinal);
        foreach (var (id, doc) in stored)
        {
            merged[id] = doc;
        }
        foreach (var layer in newer)
        {
            foreach (var (id, doc) in layer)
            {
                if (doc is null)
                {
                    merged.Remove(id);
                }
                else
                {
                    merged[id] = doc;
                }
            }
        }
        return merged.Take(limit).Select(p => KeyValuePair.Create(p.Key, Mapper.ToObject<T>(p.Value))).ToList();
    }

    /// <summary>
    /// The data file's documents overlaid with pending changes, then with <paramref name="newer"/>
    /// (a unit of work's group and its own changes). Under the read lock no pending change leaves
    /// for the data file, so the two together are every acknowledged write.
    /// </summary>
    private List<KeyValuePair<string, T>> ListWithin<T>(string collection, string idPrefix, int limit, params IEnumerable<KeyValuePair<string, BsonDocument?>>[] newer)
        where T : class
    {
        _storeLock.EnterReadLock();
        try
        {
            return Merge<T>(limit, ListDocuments(collection, idPrefix), [PendingUnder(collection, idPrefix), .. newer]);
        }
        finally
        {
            _storeLock.ExitReadLock();
        }
    }

    private int Replay(string dataDirectory)
    {
        long changes = 0;
        long groups = 0;
        var stored = StoredCommitIndex();
        _db.BeginTrans();
        var (last, torn) = WriteAheadLog.Replay(dataDirectory, group =>
        {
            groups++;
            foreach (var change in group)
            {
                ApplyChange(change.Collection, change.Id, change.Document);
                if (++changes % ReplayTransactionSize == 0)
                {
                    _db.Commit();
                    _db.BeginTrans();
                }
            }
        });
        // A group replayed over a data file that already held it (a crash after an apply, before
        // its segment was deleted) is counted again: the index skips numbers, never goes back.
        _commitIndex = stored + groups;
        if (groups > 0)
        {
            StoreCommitIndex(_commitIndex);
        }
        _db.Commit();
        _db.Checkpoint();
        _dataSync.Flush(flushToDisk: true);
        if (torn > 0)
        {
            StoreLog.TornTail(_logger, torn);
        }
        if (changes > 0)
        {
            StoreLog.Replayed(_logger, changes);
        }
        // Everything the segments held is in the data file and on disk.
        WriteAheadLog.DeleteThrough(dataDirectory, last);
        return last;
    }

    private void ApplyChange(string collection, string id, BsonDocument? doc)
    {
        var col = _db.GetCollection(collection);
        if (doc is null)
        {
            col.Delete(id);
        }
        else
        {
            col.Upsert(doc);
        }
    }

    /// <summary>
    /// A failed log append or data-file flush leaves the store unsure what is on disk. Like
    /// PostgreSQL after a failed fsync, it stops taking writes rather than carry on over files it
    /// can no longer trust; a restart recovers from the log.
    /// </summary>
    private void Fail(Exception ex)
    {
        var first = Interlocked.CompareExchange(ref _failure, new StorageFailedException("storage cannot make writes durable; restart the server", ex), null) is null;
        StoreLog.DurabilityLost(_logger, ex);
        if (first)
        {
            FailingChanged?.Invoke(true);
        }
    }

    private static void FailAll(List<IPendingWrite> batch, Exception error)
    {
        foreach (var write in batch)
        {
            write.Fail(error);
        }
    }

    private void WriterLoop()
    {
        var batch = new List<IPendingWrite>(MaxBatch);
        foreach (var first in _queue.GetConsumingEnumerable())
        {
            batch.Clear();
            batch.Add(first);
            while (batch.Count < MaxBatch && _queue.TryTake(out var next))
            {
                batch.Add(next);
            }
            CommitBatch(batch);
            // Back-pressure: while the applier is far behind, wait for it rather than grow.
            while ((_pending.Count > MaxPending || PendingBytes > MaxPendingBytes || _wal.Bytes > _maxLogBytes) && _failure is null && !_reserve.IsFull)
            {
                _wakeApplier.Set();
                _applied.WaitOne(TimeSpan.FromMilliseconds(100));
            }
        }
    }

    private void CommitBatch(List<IPendingWrite> batch)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        if (_failure is not null)
        {
            FailAll(batch, _failure);
            return;
        }
        if (_reserve.IsFull)
        {
            // Queued before the disk filled.
            FailAll(batch, _reserve.Refusal());
            return;
        }
        var changes = new Dictionary<(string Collection, string Id), BsonDocument?>();
        List<object> tags;
        try
        {
            tags = UnitGroup.RunUnits(this, batch, changes);
        }
        catch (Exception ex)
        {
            // Only a failing read of the data file gets here (the units' own errors are theirs).
            StoreLog.BatchFailed(_logger, batch.Count, ex);
            FailAll(batch, new StorageFailedException("storage write failed", ex));
            return;
        }
        try
        {
            // Before the group's log append.
            UnitGroup.RunParticipant(this, _participant, tags, changes);
        }
        catch (Exception ex)
        {
            FailAll(batch, ex);
            return;
        }
        if (changes.Count > 0)
        {
            var log = changes.Select(c => new StoreChange(c.Key.Collection, c.Key.Id, c.Value)).ToList();
            int[] sizes;
            lock (_walLock)
            {
                try
                {
                    sizes = _wal.Append(log);
                }
                catch (Exception ex) when (DiskReserve.IsDiskFull(ex))
                {
                    // The disk refused the record and the log is as it was: nothing of the group
                    // applied, and the store takes writes again once there is room.
                    _reserve.ReportFull(ex);
                    if (tags.Count > 0)
                    {
                        _participant?.CommitFailed(tags);
                    }
                    FailAll(batch, _reserve.Refusal());
                    return;
                }
                catch (Exception ex)
                {
                    Fail(ex);
                    FailAll(batch, _failure!);
                    return;
                }
                Interlocked.Increment(ref _commitIndex);
                for (var i = 0; i < log.Count; i++)
                {
                    var change = log[i];
                    Publish((change.Collection, change.Id), new PendingChange(change.Document is null ? null : CachedDocument.Parsed(change.Document), sizes[i]));
                }
            }
            Interlocked.Increment(ref _commits);
        }
        Interlocked.Add(ref _writes, batch.Count);
        foreach (var write in batch)
        {
            write.Complete();
        }
        if (_pending.Count >= ApplyThreshold || PendingBytes >= ApplyThresholdBytes || _wal.Bytes >= _maxLogBytes / 4)
        {
            _wakeApplier.Set();
        }
        var took = System.Diagnostics.Stopwatch.GetElapsedTime(started);
        Telemetry.ProcessMetrics.StoreCommitDuration.Record(took.TotalSeconds);
        Telemetry.ProcessMetrics.StoreCommitSize.Record(batch.Count);
        StoreLog.BatchCommitted(_logger, batch.Count, took.TotalMilliseconds);
    }

    /// <summary>Makes a change pending, replacing (and uncounting) an older one of the same document.</summary>
    private void Publish((string Collection, string Id) key, PendingChange change)
    {
        // Only the applier removes entries concurrently, and only the exact change it applied:
        // retrying on a lost race keeps _pendingBytes equal to the sum over _pending.
        while (true)
        {
            if (_pending.TryGetValue(key, out var older))
            {
                if (_pending.TryUpdate(key, change, older))
                {
                    Interlocked.Add(ref _pendingBytes, change.Bytes - older.Bytes);
                    return;
                }
            }
            else if (_pending.TryAdd(key, change))
            {
                Interlocked.Add(ref _pendingBytes, change.Bytes);
                return;
            }
        }
    }

    private void ApplierLoop()
    {
        // Moving acknowledged changes into the data file can wait for requests; the backlog it
        // leaves counts against request admission, so it cannot fall behind without bound.
        BackgroundPriority.LowerCurrentThread();
        while (!_stopping)
        {
            _wakeApplier.WaitOne(_applyInterval);
            // The applier is also what notices that space came back (at most once a second).
            _reserve.TryRecover();
            if (!_stopping && !_pending.IsEmpty && _failure is null)
            {
                ApplyPending();
            }
            _applied.Set();
        }
    }

    /// <summary>
    /// Moves every change acknowledged so far into the data file now, rather than at the
    /// applier's next pass (tests use it to check what the data file itself holds).
    /// </summary>
    public void Flush()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        _reserve.TryRecover();
        if (_failure is null && !_pending.IsEmpty)
        {
            ApplyPending();
        }
    }

    /// <summary>
    /// Moves every pending change into the data file: one LiteDB transaction and checkpoint
    /// under the write lock (LiteDB 5 lets a reader's snapshot reach log pages its background
    /// writer has not written yet, and its checkpoint fails with pages in use), then one fsync,
    /// then the log segments those changes came from are deleted.
    /// </summary>
    private void ApplyPending()
    {
        lock (_applyGate)
        {
            ApplyPendingOnce();
        }
    }

    private void ApplyPendingOnce()
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        KeyValuePair<(string Collection, string Id), PendingChange>[] snapshot;
        int closed;
        long index;
        lock (_walLock)
        {
            snapshot = _pending.ToArray();
            index = _commitIndex;
            // LiteDB is never asked to write what the disk has no room for: after a failed write
            // its engine refuses every call and cannot roll back (see _engineBroken). The changes
            // wait, readable, in memory and in the log; the applier looks again on its next pass.
            var needed = SpaceToApply(snapshot);
            if (_reserve.FreeBytes() < needed)
            {
                Defer(new DiskFullException($"disk full: moving {snapshot.Length} acknowledged changes into the data file needs about {needed} free bytes"));
                return;
            }
            try
            {
                closed = _wal.Roll();
            }
            catch (Exception ex) when (DiskReserve.IsDiskFull(ex))
            {
                Defer(ex);
                return;
            }
            catch (Exception ex)
            {
                Fail(ex);
                return;
            }
        }
        _storeLock.EnterWriteLock();
        try
        {
            try
            {
                _db.BeginTrans();
                foreach (var ((collection, id), change) in snapshot)
                {
                    ApplyChange(collection, id, change.Document?.Document);
                }
                StoreCommitIndex(index);
                _db.Commit();
                _db.Checkpoint();
            }
            catch (Exception ex)
            {
                try
                {
                    _db.Rollback();
                }
                catch (Exception rollbackError)
                {
                    StoreLog.RollbackFailed(_logger, rollbackError);
                    _engineBroken = true;
                }
                // The changes stay pending (reads still see them) and in the log (a restart
                // replays them); no further writes are taken. Running out of space gets here
                // only if the disk filled between the check above and LiteDB's write.
                if (DiskReserve.IsDiskFull(ex))
                {
                    _reserve.ReportFull(ex);
                }
                Fail(ex);
                return;
            }
            foreach (var ((collection, id), change) in snapshot)
            {
                // The cache takes the applied version before the pending change leaves, so no
                // lock-free reader can fall between them onto an older cached version.
                _cache.Replace(collection, id, change.Document?.Document, change.Bytes);
                if (_pending.TryRemove(KeyValuePair.Create((collection, id), change)))
                {
                    Interlocked.Add(ref _pendingBytes, -change.Bytes);
                }
            }
        }
        finally
        {
            _storeLock.ExitWriteLock();
        }
        try
        {
            _dataSync.Flush(flushToDisk: true);
            _wal.DeleteThrough(closed);
        }
        catch (Exception ex)
        {
            Fail(ex);
            return;
        }
        Interlocked.Increment(ref _applies);
        Interlocked.Add(ref _appliedChanges, snapshot.Length);
        StoreLog.Applied(_logger, snapshot.Length, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    /// <summary>No room to move the pending changes into the data file: the disk is full until there is.</summary>
    private void Defer(Exception ex)
    {
        if (!_reserve.IsFull)
        {
            StoreLog.ApplyDeferred(_logger, ex);
        }
        _reserve.ReportFull(ex);
    }

    /// <summary>
    /// A generous bound on what LiteDB writes to move <paramref name="changes"/> into the data
    /// file: each document and a page of its own (data, index), once into LiteDB's log and once
    /// more as the data file grows at the checkpoint, and a MiB beside.
    /// </summary>
    private static long SpaceToApply(KeyValuePair<(string Collection, string Id), PendingChange>[] changes)
    {
        const long PageBytes = 8192;
        long bytes = 1024 * 1024;
        foreach (var (_, change) in changes)
        {
            bytes += 2 * (change.Bytes + PageBytes);
        }
        return bytes;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        Telemetry.ProcessMetrics.ForgetCache(this);
        _queue.CompleteAdding();
        _writer.Join();
        _stopping = true;
        _wakeApplier.Set();
        _applier.Join();
        if (_failure is null && !_pending.IsEmpty)
        {
            ApplyPending();
        }
        _wal.Dispose();
        if (_failure is null && _pending.IsEmpty)
        {
            // A clean shutdown leaves the data file whole and no log behind.
            WriteAheadLog.DeleteThrough(_directory, int.MaxValue);
        }
        _queue.Dispose();
        // A snapshot still reading the data file (a backup outliving the host) holds the apply gate.
        lock (_applyGate)
        {
            if (_engineBroken)
            {
                lock (BrokenEngines)
                {
                    BrokenEngines.Add(_db);
                }
            }
            else
            {
                _db.Dispose();
            }
            _dataSync.Dispose();
            _storeLock.Dispose();
        }
        _wakeApplier.Dispose();
        _applied.Dispose();
    }

    private static BsonMapper CreateMapper()
    {
        var mapper = new BsonMapper { SerializeNullValues = false, TrimWhitespace = false, EmptyStringToNull = false };
        // A BsonDocument's field names ignore case, so a map stored as one loses "Owner" to
        // "owner". Maps are stored as [key, value] pairs instead; documents written as a
        // BsonDocument before that still read.
        mapper.RegisterType(
            serialize: (Dictionary<string, string> map) => new BsonArray(map.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (BsonValue)new BsonArray(p.Key, p.Value))),
            deserialize: value => value.IsDocument
                ? value.AsDocument.ToDictionary(p => p.Key, p => p.Value.AsString, StringComparer.Ordinal)
                : value.AsArray.ToDictionary(p => p.AsArray[0].AsString, p => p.AsArray[1].AsString, StringComparer.Ordinal));
        return mapper;
    }

    /// <summary>An acknowledged change not yet in the data file; a null document is a delete.</summary>
    private sealed class PendingChange(CachedDocument? document, int bytes)
    {
        public CachedDocument? Document { get; } = document;

        /// <summary>The document's BSON size (0 for a delete), counted in <see cref="PendingBytes"/>.</summary>
        public int Bytes { get; } = bytes;
    }
}
