using System.Collections.Concurrent;
using LiteDB;
using Microsoft.Extensions.Logging;

namespace Vault.Server.Storage;

/// <summary>
/// LiteDB in direct mode, one instance per process. All writes go through one writer thread
/// that groups whatever is queued into one transaction, commits, checkpoints and fsyncs once,
/// then acknowledges every unit of work in the group (group commit).
/// </summary>
public sealed class LiteDbStore : IVaultStore
{
    private const int MaxBatch = 512;
    private static readonly BsonMapper Mapper = CreateMapper();

    private readonly LiteDatabase _db;
    // A second handle on the data file, used only to fsync it: fsync flushes the file, not
    // the descriptor, so this covers what LiteDB wrote through its own handles.
    private readonly FileStream _dataSync;
    private readonly BlockingCollection<IPendingWrite> _queue = new();
    private readonly Thread _writer;
    private readonly ILogger _logger;
    // Reads share this lock; a group commit takes it alone (see CommitBatch for why).
    private readonly ReaderWriterLockSlim _storeLock = new();
    private int _disposed;
    private long _commits;
    private long _writes;
    private volatile IOException? _failure;

    /// <param name="dataDirectory">Where vault.db and its log live.</param>
    /// <param name="logger">Store log.</param>
    /// <param name="documentTypes">Every document type (nested ones too) the store will map.
    /// LiteDB's mapper builds a type's map lazily and not thread-safely: two threads meeting a
    /// type for the first time can see a half-built map ("Collection was modified"), so maps are
    /// built here, before any request runs.</param>
    /// <param name="collections">Every collection the store will use. They are created here:
    /// LiteDB 5 corrupts a reader's snapshot ("page type must be collection page") when a
    /// collection is created by a commit while another thread reads it.</param>
    public LiteDbStore(string dataDirectory, ILogger<LiteDbStore> logger, IEnumerable<Type>? documentTypes = null, IEnumerable<string>? collections = null)
    {
        _logger = logger;
        lock (Mapper)
        {
            foreach (var type in documentTypes ?? [])
            {
                Mapper.ToObject(type, Mapper.ToDocument(type, Activator.CreateInstance(type)!));
            }
        }
        Directory.CreateDirectory(dataDirectory);
        var path = Path.Combine(dataDirectory, "vault.db");
        // File mode, not LiteDB's Stream constructor: with a caller's stream LiteDB shares one
        // stream between concurrent readers, and reads racing a commit corrupt pages.
        _db = new LiteDatabase(new ConnectionString { Filename = path, Connection = ConnectionType.Direct }, Mapper);
        // We checkpoint after every group commit ourselves, under the reader lock below.
        _db.CheckpointSize = 0;
        foreach (var collection in collections ?? [])
        {
            _db.GetCollection(collection).EnsureIndex("_id");
        }
        _db.Checkpoint();
        _dataSync = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, bufferSize: 1);
        _writer = new Thread(WriterLoop) { Name = "vault-store-writer", IsBackground = true };
        _writer.Start();
    }

    public T? Get<T>(string collection, string id) where T : class
    {
        _storeLock.EnterReadLock();
        try
        {
            var doc = _db.GetCollection(collection).FindById(id);
            return doc is null ? null : Mapper.ToObject<T>(doc);
        }
        finally
        {
            _storeLock.ExitReadLock();
        }
    }

    public IReadOnlyList<KeyValuePair<string, T>> List<T>(string collection, string idPrefix, int limit = int.MaxValue) where T : class
    {
        _storeLock.EnterReadLock();
        try
        {
            return ListFrom<T>(_db, collection, idPrefix, limit);
        }
        finally
        {
            _storeLock.ExitReadLock();
        }
    }

    /// <summary>Units of work committed and the commits (fsyncs) they took: fewer commits than writes is group commit at work.</summary>
    public (long Writes, long Commits) Statistics => (Interlocked.Read(ref _writes), Interlocked.Read(ref _commits));

    public Task<TResult> WriteAsync<TResult>(Func<IStoreWriter, TResult> work, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_failure is { } failure)
        {
            return Task.FromException<TResult>(failure);
        }
        var pending = new PendingWrite<TResult>(work);
        _queue.Add(pending, CancellationToken.None);
        return pending.Task;
    }

    private static IReadOnlyList<KeyValuePair<string, T>> ListFrom<T>(LiteDatabase db, string collection, string idPrefix, int limit)
        where T : class
    {
        var col = db.GetCollection(collection);
        var docs = idPrefix.Length == 0 ? col.FindAll() : col.Find(Query.StartsWith("_id", idPrefix));
        return docs.Take(limit).Select(d => KeyValuePair.Create(d["_id"].AsString, Mapper.ToObject<T>(d))).ToList();
    }

    /// <summary>
    /// After a commit, a failed checkpoint or fsync leaves writes applied but not known to be on
    /// disk. Like PostgreSQL after a failed fsync, the store stops taking writes rather than
    /// carry on over a file it can no longer trust; a restart recovers from the log.
    /// </summary>
    private bool TryDurable(Action step, List<IPendingWrite> batch)
    {
        try
        {
            step();
            return true;
        }
        catch (Exception ex)
        {
            _failure = new IOException("storage cannot make writes durable; restart the server", ex);
            StoreLog.DurabilityLost(_logger, ex);
            FailAll(batch, _failure);
            return false;
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
        // Readers are kept out from the transaction's start to the end of its checkpoint:
        // LiteDB 5 lets a reader's snapshot reach log pages its background writer has not
        // written yet ("page type must be collection page"), and its checkpoint fails with
        // pages in use. The fsync runs after readers are let back in.
        _storeLock.EnterWriteLock();
        try
        {
            try
            {
                _db.BeginTrans();
                foreach (var write in batch)
                {
                    var unit = new UnitOfWork(_db);
                    if (write.Run(unit))
                    {
                        unit.Apply();
                    }
                }
                _db.Commit();
            }
            catch (Exception ex)
            {
                StoreLog.BatchFailed(_logger, batch.Count, ex);
                try
                {
                    _db.Rollback();
                }
                catch (Exception rollbackError)
                {
                    StoreLog.RollbackFailed(_logger, rollbackError);
                }
                FailAll(batch, new IOException("storage write failed", ex));
                return;
            }
            // Commit hands pages to LiteDB's background writer and returns; the checkpoint
            // waits for that writer and copies the log into the data file.
            if (!TryDurable(_db.Checkpoint, batch))
            {
                return;
            }
        }
        finally
        {
            _storeLock.ExitWriteLock();
        }
        if (!TryDurable(() => _dataSync.Flush(flushToDisk: true), batch))
        {
            return;
        }
        Interlocked.Increment(ref _commits);
        Interlocked.Add(ref _writes, batch.Count);
        foreach (var write in batch)
        {
            write.Complete();
        }
        StoreLog.BatchCommitted(_logger, batch.Count, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _queue.CompleteAdding();
        _writer.Join();
        _queue.Dispose();
        _db.Dispose();
        _dataSync.Dispose();
        _storeLock.Dispose();
    }

    private static BsonMapper CreateMapper()
    {
        var mapper = new BsonMapper { SerializeNullValues = false, TrimWhitespace = false, EmptyStringToNull = false };
        return mapper;
    }

    private interface IPendingWrite
    {
        /// <summary>Runs the work; false if it threw (its writes are then discarded).</summary>
        bool Run(IStoreWriter writer);

        void Complete();

        void Fail(Exception error);
    }

    private sealed class PendingWrite<TResult>(Func<IStoreWriter, TResult> work) : IPendingWrite
    {
        private readonly TaskCompletionSource<TResult> _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private TResult? _result;
        private Exception? _error;

        public Task<TResult> Task => _tcs.Task;

        public bool Run(IStoreWriter writer)
        {
            try
            {
                _result = work(writer);
                return true;
            }
            catch (Exception ex)
            {
                _error = ex;
                return false;
            }
        }

        public void Complete()
        {
            if (_error is not null)
            {
                _tcs.TrySetException(_error);
            }
            else
            {
                _tcs.TrySetResult(_result!);
            }
        }

        public void Fail(Exception error) => _tcs.TrySetException(_error ?? error);
    }

    /// <summary>
    /// One caller's writes, held aside until its work returns so that a throwing unit leaves
    /// nothing behind in the shared transaction. Reads see the unit's own writes first.
    /// </summary>
    private sealed class UnitOfWork(LiteDatabase db) : IStoreWriter
    {
        private readonly Dictionary<(string Collection, string Id), BsonDocument?> _pending = [];

        public T? Get<T>(string collection, string id) where T : class
        {
            if (_pending.TryGetValue((collection, id), out var doc))
            {
                return doc is null ? null : Mapper.ToObject<T>(doc);
            }
            var stored = db.GetCollection(collection).FindById(id);
            return stored is null ? null : Mapper.ToObject<T>(stored);
        }

        public IReadOnlyList<KeyValuePair<string, T>> List<T>(string collection, string idPrefix, int limit = int.MaxValue) where T : class
        {
            var merged = new SortedDictionary<string, T>(StringComparer.Ordinal);
            foreach (var (id, value) in ListFrom<T>(db, collection, idPrefix, int.MaxValue))
            {
                merged[id] = value;
            }
            foreach (var ((col, id), doc) in _pending)
            {
                if (col != collection || !id.StartsWith(idPrefix, StringComparison.Ordinal))
                {
                    continue;
                }
                if (doc is null)
                {
                    merged.Remove(id);
                }
                else
                {
                    merged[id] = Mapper.ToObject<T>(doc);
                }
            }
            return merged.Take(limit).ToList();
        }

        public void Put<T>(string collection, string id, T document) where T : class
        {
            var doc = Mapper.ToDocument(document);
            doc["_id"] = id;
            _pending[(collection, id)] = doc;
        }

        public void Delete(string collection, string id) => _pending[(collection, id)] = null;

        public void Apply()
        {
            foreach (var ((collection, id), doc) in _pending)
            {
                var col = db.GetCollection(collection);
                if (doc is null)
                {
                    col.Delete(id);
                }
                else
                {
                    col.Upsert(doc);
                }
            }
        }
    }
}
