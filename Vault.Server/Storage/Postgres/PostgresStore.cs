using System.Collections.Concurrent;
using LiteDB;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace Vault.Server.Storage.Postgres;

/// <summary>
/// The vault's store on a shared PostgreSQL database (schema: <see cref="PostgresSchema"/>): the
/// same documents as the data file — ciphertext and non-secret metadata, as BSON — one row each.
/// <para>
/// <b>Reads never wait on the database.</b> The node holds every document in memory (loaded when
/// the store opens), so a read, inside a unit of work or not, is a lookup; PostgreSQL is where
/// commits become durable and where the other nodes learn of them (a node of several follows the
/// active's commits into its image: <c>LISTEN/NOTIFY</c> and a poll). <b>Writes</b> are units of
/// work run by one writer thread in groups, as in <see cref="LiteDbStore"/>: each group is one
/// PostgreSQL transaction (upserts and deletes, the commit index, and — when the node leads a group
/// of nodes — the fence of its term, <see cref="LeaderLease.Fence"/>), and its units complete
/// only after the commit. A group the database refuses before its commit fails alone
/// (UNAVAILABLE). A commit whose answer is lost (the connection failed during it: a database
/// restarting) is settled by asking the database, once it answers, whether that transaction (its
/// id read before the commit) committed — and only a database away for longer than a minute stops
/// the store taking writes until a restart reloads it, as a failed fsync does for LiteDB.
/// </para>
/// </summary>
public sealed class PostgresStore : IVaultStore, IUnitBase
{
    private const int MaxBatch = 512;
    private readonly NpgsqlDataSource _database;
    private readonly ILogger _logger;
    private readonly HashSet<Type>? _documentTypes;
    private readonly Func<Leadership?>? _term;
    private readonly ReaderWriterLockSlim _imageLock = new();
    private readonly Dictionary<string, ImageCollection> _image = new(StringComparer.Ordinal);
    private readonly BlockingCollection<IPendingWrite> _queue = new();
    private readonly Thread _writer;
    private readonly string? _node;
    private readonly HashSet<(string Collection, string Id)> _nodeLocal;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _follower = Task.CompletedTask;
    private readonly SemaphoreSlim _refreshNow = new(0, 1);
    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private TaskCompletionSource _advanced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _behind;
    // The database's commit index as the follower last read it, and how many reads it made.
    private long _databaseIndex;
    private long _refreshes;
    private ICommitParticipant? _participant;
    private volatile StorageFailedException? _failure;
    private long _commitIndex;
    private long _commits;
    private int _disposed;
    private readonly bool _ownsDatabase;
    // The session holding the database's advisory lock for as long as the store is open: one node
    // per database, and it is the only writer (what settling a lost commit relies on).
    private NpgsqlConnection? _hold;
    private int _holdPid;

    /// <summary>The advisory lock (two-key form, so it shares no key with any other) a node holds on its database.</summary>
    internal const int HoldKey1 = 7661;
    internal const int HoldKey2 = 1;

    /// <param name="database">The shared database; its schema is migrated here.</param>
    /// <param name="documentTypes">As for <see cref="LiteDbStore"/>: every type the store may read and write (null: any).</param>
    /// <param name="term">When the node is one of several: its current term as the active one
    /// (every write is fenced by it), or null while it is not active (writes are refused).</param>
    /// <param name="ownsDatabase">Dispose <paramref name="database"/> with the store.</param>
    /// <param name="node">
    /// This node's id when it is one of several on the database (<paramref name="term"/> is then
    /// required): no node holds the database alone, the image follows the active node's commits
    /// (<c>LISTEN/NOTIFY</c>, and a poll), and <paramref name="nodeLocal"/> documents are this node's
    /// own, written without a term. Null: the only node (it holds the database's advisory lock).
    /// </param>
    /// <param name="nodeLocal">Documents each node keeps for itself (its audit anchor).</param>
    public PostgresStore(NpgsqlDataSource database, ILogger<PostgresStore> logger, IEnumerable<Type>? documentTypes = null, Func<Leadership?>? term = null,
        bool ownsDatabase = false, string? node = null, IEnumerable<(string Collection, string Id)>? nodeLocal = null)
    {
        if (node is not null && term is null)
        {
            throw new ArgumentException("a node of several needs its term", nameof(term));
        }
        _database = database;
        _ownsDatabase = ownsDatabase;
        _logger = logger;
        _term = term;
        _node = node;
        _nodeLocal = node is null ? [] : [.. nodeLocal ?? []];
        _documentTypes = LiteDbStore.PrepareTypes(documentTypes);
        PostgresSchema.Migrate(database);
        // The only node holds its database alone; nodes of several share it (and so exclude an
        // only node, and an only node excludes them).
        TakeHold(shared: node is not null);
        Load();
        _writer = new Thread(WriterLoop) { Name = "vault-pg-store-writer", IsBackground = true };
        _writer.Start();
        if (node is not null)
        {
            _follower = Task.Run(() => FollowAsync(_stopping.Token));
        }
    }

    /// <summary>
    /// Raised (on the follower, outside any lock) with the documents another node changed, once the
    /// image holds them: what a cache of them outside the store must look at again.
    /// </summary>
    public event Action<IReadOnlyCollection<(string Collection, string Id)>>? ChangedElsewhere;

    public long CommitIndex => Interlocked.Read(ref _commitIndex);

    /// <summary>Tests only: how a group's transaction is committed (to lose the answer to a commit on purpose).</summary>
    internal Action<NpgsqlTransaction>? CommitForTests { get; set; }

    /// <summary>Group commits made by this process (each one PostgreSQL transaction).</summary>
    public long Commits => Interlocked.Read(ref _commits);

    public long PendingBytes => 0;

    public string? Failure => _failure?.Message;

    public event Action<bool>? FailingChanged;

    public T? Get<T>(string collection, string id) where T : class
    {
        LiteDbStore.RequireDeclared<T>(_documentTypes);
        return Lookup(collection, id) is { } entry ? LiteDbStore.Mapper.ToObject<T>(entry.Document) : null;
    }

    public IReadOnlyList<KeyValuePair<string, T>> List<T>(string collection, string idPrefix, int limit = int.MaxValue) where T : class
    {
        LiteDbStore.RequireDeclared<T>(_documentTypes);
        return ListWithin<T>(collection, idPrefix, limit);
    }

    public IEnumerable<KeyValuePair<string, T>> Scan<T>(string collection, int pageSize = 1000) where T : class
    {
        LiteDbStore.RequireDeclared<T>(_documentTypes);
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        string? after = null;
        while (true)
        {
            var stored = new List<KeyValuePair<string, BsonDocument>>(pageSize);
            _imageLock.EnterReadLock();
            try
            {
                if (_image.TryGetValue(collection, out var documents) && documents.Ids.Count > 0)
                {
                    var ids = after is null ? documents.Ids : string.CompareOrdinal(after, documents.Ids.Max) >= 0 ? [] : documents.Ids.GetViewBetween(after, documents.Ids.Max!);
                    foreach (var id in ids)
                    {
                        if (after is not null && string.CompareOrdinal(id, after) <= 0)
                        {
                            continue;
                        }
                        stored.Add(KeyValuePair.Create(id, documents.Documents[id].Document));
                        if (stored.Count == pageSize)
                        {
                            break;
                        }
                    }
                }
            }
            finally
            {
                _imageLock.ExitReadLock();
            }
            foreach (var document in LiteDbStore.Merge<T>(int.MaxValue, stored))
            {
                yield return document;
            }
            if (stored.Count < pageSize)
            {
                yield break;
            }
            after = stored[^1].Key;
        }
    }

    public TDerived? GetDerived<T, TDerived>(string collection, string id, Func<T, TDerived> derive) where T : class where TDerived : class
    {
        LiteDbStore.RequireDeclared<T>(_documentTypes);
        if (Lookup(collection, id) is not { } entry)
        {
            return null;
        }
        if (entry.Derived is TDerived derived)
        {
            return derived;
        }
        var value = derive(LiteDbStore.Mapper.ToObject<T>(entry.Document));
        entry.Derived = value;
        return value;
    }

    public Task<TResult> WriteAsync<TResult>(Func<IStoreWriter, TResult> work, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_failure is { } failure)
        {
            return Task.FromException<TResult>(failure);
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

    public StoreSnapshot Snapshot()
    {
        _imageLock.EnterReadLock();
        try
        {
            var documents = _image.OrderBy(c => c.Key, StringComparer.Ordinal)
                .SelectMany(c => c.Value.Ids.Select(id => new StoredDocument(c.Key, id, BsonSerializer.Serialize(c.Value.Documents[id].Document))))
                .ToList();
            return new StoreSnapshot(Interlocked.Read(ref _commitIndex), documents);
        }
        finally
        {
            _imageLock.ExitReadLock();
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _stopping.Cancel();
        try
        {
            _follower.Wait(TimeSpan.FromSeconds(10));
        }
        catch (AggregateException)
        {
            // Stopped: its end is not this one's concern.
        }
        _queue.CompleteAdding();
        _writer.Join();
        _queue.Dispose();
        _imageLock.Dispose();
        ReleaseHold();
        if (_ownsDatabase)
        {
            _database.Dispose();
        }
    }

    /// <summary>Every row into memory, with the commit index (one repeatable-read read of the database).</summary>
    private void Load()
    {
        var snapshot = PostgresDocuments.Snapshot(_database);
        _commitIndex = snapshot.Index;
        foreach (var document in snapshot.Documents.Where(d => !_nodeLocal.Contains((d.Collection, d.Id))))
        {
            Set(document.Collection, document.Id, BsonSerializer.Deserialize(document.Bson));
        }
        if (_node is not null)
        {
            // This node's own documents come from its rows alone: a shared row under such a key (an
            // only node's, from before there were several) is nobody's now.
            foreach (var document in PostgresDocuments.NodeDocuments(_database, _node))
            {
                Set(document.Collection, document.Id, BsonSerializer.Deserialize(document.Bson));
            }
        }
    }

    private Entry? Lookup(string collection, string id)
    {
        _imageLock.EnterReadLock();
        try
        {
            return _image.TryGetValue(collection, out var documents) && documents.Documents.TryGetValue(id, out var entry) ? entry : null;
        }
        finally
        {
            _imageLock.ExitReadLock();
        }
    }

    HashSet<Type>? IUnitBase.DocumentTypes => _documentTypes;

    List<KeyValuePair<string, T>> IUnitBase.ListWithin<T>(string collection, string idPrefix, int limit, params IEnumerable<KeyValuePair<string, BsonDocument?>>[] newer) =>
        ListWithin<T>(collection, idPrefix, limit, newer);

    /// <summary>The documents under an exact-string prefix, overlaid with <paramref name="newer"/> (a unit's group and its own changes).</summary>
    private List<KeyValuePair<string, T>> ListWithin<T>(string collection, string idPrefix, int limit, params IEnumerable<KeyValuePair<string, BsonDocument?>>[] newer)
        where T : class
    {
        List<KeyValuePair<string, BsonDocument>> stored;
        _imageLock.EnterReadLock();
        try
        {
            stored = _image.TryGetValue(collection, out var documents)
                ? documents.Under(idPrefix).Select(id => KeyValuePair.Create(id, documents.Documents[id].Document)).ToList()
                : [];
        }
        finally
        {
            _imageLock.ExitReadLock();
        }
        return LiteDbStore.Merge<T>(limit, stored, newer);
    }

    /// <summary>Under the image's write lock (or before any reader exists).</summary>
    private void Set(string collection, string id, BsonDocument? document)
    {
        if (!_image.TryGetValue(collection, out var documents))
        {
            documents = _image[collection] = new ImageCollection();
        }
        if (document is null)
        {
            documents.Ids.Remove(id);
            documents.Documents.Remove(id);
        }
        else
        {
            documents.Ids.Add(id);
            documents.Documents[id] = new Entry(document);
        }
    }

    private void WriterLoop()
    {
        var batch = new List<IPendingWrite>(MaxBatch);
        foreach (var first in _queue.GetConsumingEnumerable())
        {
            batch.Clear();
            batch.Add(first);
            // A standby writes only its own documents, unit by unit: a unit that wants more is
            // refused alone, not with the anchors grouped beside it.
            var most = _node is not null && _term!() is null ? 1 : MaxBatch;
            while (batch.Count < most && _queue.TryTake(out var next))
            {
                batch.Add(next);
            }
            CommitBatch(batch);
        }
    }

    private void CommitBatch(List<IPendingWrite> batch)
    {
        if (_failure is not null)
        {
            FailAll(batch, _failure);
            return;
        }
        var changes = new Dictionary<(string Collection, string Id), BsonDocument?>();
        // The index the units' reads stand on, taken before they run: if the image moves under them
        // (a node catching up), the database refuses a commit from this base.
        var baseIndex = Interlocked.Read(ref _commitIndex);
        var tags = UnitGroup.RunUnits(this, batch, changes);
        try
        {
            UnitGroup.RunParticipant(this, _participant, tags, changes);
        }
        catch (Exception ex)
        {
            FailAll(batch, ex);
            return;
        }
        if (changes.Count > 0)
        {
            var shared = _nodeLocal.Count == 0 ? changes : changes.Where(c => !_nodeLocal.Contains(c.Key)).ToDictionary();
            var own = _nodeLocal.Count == 0 ? [] : changes.Where(c => _nodeLocal.Contains(c.Key)).ToDictionary();
            // Only a change to shared documents takes the next commit index (and the term's fence).
            var index = baseIndex + (shared.Count > 0 ? 1 : 0);
            var committing = false;
            string? xid = null;
            try
            {
                var term = _term is null || shared.Count == 0 ? null : _term() ?? throw new FencedException("this node is not the active one: writes go to the active node");
                using var connection = _database.OpenConnection();
                using var transaction = connection.BeginTransaction();
                if (_node is null && _hold is null)
                {
                    TakeHold();
                }
                if (term is not null)
                {
                    LeaderLease.Fence(connection, transaction, term);
                }
                xid = Write(connection, transaction, shared, own, index);
                committing = true;
                (CommitForTests ?? (t => t.Commit()))(transaction);
            }
            catch (Exception ex) when (!committing)
            {
                // Nothing of the group is in the database: it fails alone, and the next may succeed.
                if (tags.Count > 0)
                {
                    _participant?.CommitFailed(tags);
                }
                PostgresStoreLog.GroupRefused(_logger, batch.Count, ex);
                FailAll(batch, ex as VaultException ?? new UnavailableException($"storage unavailable: the database refused the write ({ex.GetType().Name}); try again"));
                return;
            }
            catch (Exception ex)
            {
                // The connection failed during the commit (the database restarting, the network):
                // it happened or not; the database says which by the transaction's id, once it answers.
                switch (CommittedAt(xid!))
                {
                    case true:
                        PostgresStoreLog.CommitOutcomeResolved(_logger, index, true, ex);
                        break;
                    case false:
                        PostgresStoreLog.CommitOutcomeResolved(_logger, index, false, ex);
                        if (tags.Count > 0)
                        {
                            _participant?.CommitFailed(tags);
                        }
                        FailAll(batch, new UnavailableException("storage unavailable: the database went away during the commit, which did not happen; try again"));
                        return;
                    default:
                        // Still unknown: memory no longer knows what the database holds.
                        var first = Interlocked.CompareExchange(ref _failure, new StorageFailedException("storage lost the outcome of a commit; restart the server to reload it", ex), null) is null;
                        PostgresStoreLog.CommitOutcomeLost(_logger, ex);
                        if (first)
                        {
                            FailingChanged?.Invoke(true);
                        }
                        FailAll(batch, _failure!);
                        return;
                }
            }
            _imageLock.EnterWriteLock();
            try
            {
                foreach (var ((collection, id), document) in changes)
                {
                    Set(collection, id, document);
                }
                if (shared.Count > 0)
                {
                    // Only a shared commit moves the index (a node's own documents take none),
                    // and never back over what the follower read meanwhile.
                    Interlocked.Exchange(ref _commitIndex, Math.Max(index, Interlocked.Read(ref _commitIndex)));
                }
            }
            finally
            {
                _imageLock.ExitWriteLock();
            }
            Interlocked.Increment(ref _commits);
            if (shared.Count > 0)
            {
                Advanced();
            }
        }
        foreach (var write in batch)
        {
            write.Complete();
        }
    }

    /// <summary>How often a node of several reads the database for commits it was not told of.</summary>
    internal static TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A node of several: listens for the active node's commits (<c>NOTIFY vault_commit</c>) and
    /// reads what changed after each — or after <see cref="PollInterval"/> without one, or when
    /// asked (<see cref="RequestRefresh"/>) — so its image follows the database. A lost connection
    /// (the database restarting) is opened again; the poll covers what was said meanwhile.
    /// </summary>
    private async Task FollowAsync(CancellationToken stopping)
    {
        Task<bool>? asked = null;
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await using var listener = await _database.OpenConnectionAsync(stopping);
                await using (var listen = new NpgsqlCommand($"LISTEN vault_commit; SELECT pg_try_advisory_lock_shared({HoldKey1}, {HoldKey2})", listener))
                {
                    // The share of the database is held on this session too, so it is taken again
                    // whenever the database restarted (and the hold's session went with it).
                    if (await listen.ExecuteScalarAsync(stopping) is not true)
                    {
                        PostgresStoreLog.SharedHoldRefused(_logger);
                    }
                }
                Task<bool>? heard = null;
                while (!stopping.IsCancellationRequested)
                {
                    await RefreshAsync(stopping);
                    // Both waits outlive a round that the other ended, so neither a notification
                    // nor a request is lost between rounds.
                    heard ??= listener.WaitAsync(PollInterval, stopping);
                    asked ??= _refreshNow.WaitAsync(Timeout.Infinite, stopping);
                    await Task.WhenAny(heard, asked);
                    if (heard.IsCompleted)
                    {
                        await heard;
                        heard = null;
                    }
                    if (asked.IsCompleted)
                    {
                        await asked;
                        asked = null;
                    }
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                PostgresStoreLog.FollowFailed(_logger, ex);
                try
                {
                    await Task.Delay(PollInterval, stopping);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Asks the follower to read the database now.</summary>
    private void RequestRefresh()
    {
        if (_node is null)
        {
            return;
        }
        try
        {
            _refreshNow.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already asked.
        }
    }

    /// <summary>
    /// Brings the image up to the database's newest commit, whatever this node's role (a standby
    /// becoming active calls this after taking its term and before writing with it).
    /// </summary>
    public Task CatchUpAsync(CancellationToken cancellationToken) => RefreshAsync(cancellationToken, force: true);

    /// <summary>Reads what other nodes committed since this image's index and applies it (not while this node is the active one, unless forced).</summary>
    private async Task RefreshAsync(CancellationToken cancellationToken, bool force = false)
    {
        await _refreshing.WaitAsync(cancellationToken);
        try
        {
            if (!force && !_behind && (_term!() is not null || !Following))
            {
                // Active: the only writer, its image is the database.
                return;
            }
            _behind = false;
            var since = Interlocked.Read(ref _commitIndex);
            var changes = await PostgresDocuments.ChangesSinceAsync(_database, since, cancellationToken);
            Interlocked.Exchange(ref _databaseIndex, changes?.Index ?? long.MaxValue);
            Interlocked.Increment(ref _refreshes);
            var changed = new List<(string Collection, string Id)>();
            if (changes is null)
            {
                // Too far behind for the removals kept: everything again.
                var snapshot = await PostgresDocuments.SnapshotAsync(_database, cancellationToken);
                Apply(snapshot.Index, () => _image.SelectMany(c => c.Value.Ids.Select(id => (c.Key, id))), snapshot.Documents, changed);
            }
            else if (changes.Index > since)
            {
                Apply(changes.Index, () => changes.Removed, changes.Written, changed);
            }
            if (changed.Count > 0)
            {
                ChangedElsewhere?.Invoke(changed);
            }
            // Whoever waits for an index looks again, whether or not this read moved it.
            Advanced();
        }
        finally
        {
            _refreshing.Release();
        }
    }

    /// <summary>
    /// Applies what other nodes committed up to <paramref name="index"/> (unless the image already
    /// stands there): <paramref name="removed"/> (given the image, under its lock), then
    /// <paramref name="written"/>. This node's own documents are never touched.
    /// </summary>
    private void Apply(long index, Func<IEnumerable<(string Collection, string Id)>> removed, IReadOnlyList<StoredDocument> written, List<(string Collection, string Id)> changed)
    {
        _imageLock.EnterWriteLock();
        try
        {
            if (index <= Interlocked.Read(ref _commitIndex))
            {
                return;
            }
            foreach (var (collection, id) in removed().Where(key => !_nodeLocal.Contains(key)).ToList())
            {
                Set(collection, id, null);
                changed.Add((collection, id));
            }
            foreach (var document in written.Where(d => !_nodeLocal.Contains((d.Collection, d.Id))))
            {
                Set(document.Collection, document.Id, BsonSerializer.Deserialize(document.Bson));
                changed.Add((document.Collection, document.Id));
            }
            Interlocked.Exchange(ref _commitIndex, index);
        }
        finally
        {
            _imageLock.ExitWriteLock();
        }
    }

    /// <summary>The commit index moved: wakes whoever waits for it.</summary>
    private void Advanced() => Interlocked.Exchange(ref _advanced, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Tests only: whether the follower reads the database (false: it stands still until set again).</summary>
    internal bool Following
    {
        get => _following;
        set
        {
            _following = value;
            if (!value)
            {
                // A read under way finishes before this returns: from here on the image stands still.
                _refreshing.Wait();
                _refreshing.Release();
            }
        }
    }

    private volatile bool _following = true;

    /// <summary>
    /// Waits until this node's reads see commit <paramref name="index"/>. A standby asks its
    /// follower to read the database once; an index the database itself has not reached (a client
    /// that saw another history: a restored or replaced database) is not waited for.
    /// </summary>
    public async Task<bool> WaitForIndexAsync(long index, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (_node is null || (_term!() is not null && !_behind))
        {
            // The only writer: nothing newer than its image exists (an index beyond it is another history's).
            return true;
        }
        var deadline = DateTime.UtcNow + timeout;
        var refreshesBefore = Interlocked.Read(ref _refreshes);
        RequestRefresh();
        while (Interlocked.Read(ref _commitIndex) < index)
        {
            var advanced = Volatile.Read(ref _advanced).Task;
            if (Interlocked.Read(ref _commitIndex) >= index)
            {
                break;
            }
            if (Interlocked.Read(ref _refreshes) > refreshesBefore + 1 && Interlocked.Read(ref _databaseIndex) < index)
            {
                // Read after this wait began, the database is not that far: nothing to wait for.
                return true;
            }
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                return false;
            }
            try
            {
                await advanced.WaitAsync(left < PollInterval ? left : PollInterval, cancellationToken);
            }
            catch (TimeoutException)
            {
                // Look again.
            }
        }
        return true;
    }

    /// <summary>How long the writer waits for the database to answer whether a commit happened.</summary>
    private static readonly TimeSpan OutcomeWait = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Whether transaction <paramref name="xid"/> committed, asked of the database until it answers
    /// and the transaction is over (its session may still be finishing the commit); at most
    /// <see cref="OutcomeWait"/>, null if it never knew.
    /// </summary>
    private bool? CommittedAt(string xid)
    {
        var deadline = DateTime.UtcNow + OutcomeWait;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var connection = _database.OpenConnection();
                using var read = new NpgsqlCommand("SELECT pg_xact_status(@xid::xid8)::text", connection);
                read.Parameters.AddWithValue("xid", xid);
                switch (read.ExecuteScalar() as string)
                {
                    case "committed":
                        return true;
                    case "aborted":
                        return false;
                    case "in progress":
                        break;
                    default:
                        return null;
                }
            }
            catch (Exception ex) when (ex is NpgsqlException or System.Net.Sockets.SocketException or IOException or TimeoutException)
            {
                // The database is not answering yet.
            }
            Thread.Sleep(200);
        }
        return null;
    }

    /// <summary>
    /// Takes the database's advisory lock on a session kept open (again, after the database
    /// restarted and the session with it): the only node alone, nodes of several shared.
    /// </summary>
    /// <exception cref="ValidationException">Another node holds the database.</exception>
    private void TakeHold(bool shared = false)
    {
        ReleaseHold();
        var connection = _database.OpenConnection();
        try
        {
            using var take = new NpgsqlCommand($"SELECT pg_try_advisory_lock{(shared ? "_shared" : "")}({HoldKey1}, {HoldKey2}), pg_backend_pid()", connection);
            using var reader = take.ExecuteReader();
            reader.Read();
            if (!reader.GetBoolean(0))
            {
                throw new ValidationException("storage-connection-file", shared
                    ? "a vault node without a node id (the only node on its database) is using this database: stop it, or give it Vault:NodeId too"
                    : "another vault node is using this database: one node per database without Vault:NodeId (give every node a node id to run several)");
            }
            _holdPid = reader.GetInt32(1);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
        _hold = connection;
    }

    /// <summary>
    /// Lets the database's advisory lock go (explicitly: a pooled session keeps its locks until it is
    /// reset) and closes the session; a session the database already ended has nothing to let go.
    /// </summary>
    private void ReleaseHold()
    {
        if (_hold is not { } hold)
        {
            return;
        }
        _hold = null;
        try
        {
            using var release = new NpgsqlCommand("SELECT pg_advisory_unlock_all()", hold);
            release.ExecuteNonQuery();
        }
        catch (Exception ex) when (ex is NpgsqlException or IOException or InvalidOperationException)
        {
            // Gone with its session.
        }
        hold.Dispose();
    }

    /// <summary>Removals older than this many commits are forgotten (a standby further behind reloads everything).</summary>
    private const long RemovedKept = 100_000;

    /// <summary>
    /// The group's upserts and deletes, and the commit index, in one round trip (sync I/O on the
    /// writer thread). The only node first checks it still holds the database (its hold's session
    /// may have gone with a restart of the database; then the group fails and the hold is taken
    /// again); the index moves only from the one before it (else this node's image is behind the
    /// database, and the group fails); a node of several tells the others of the commit.
    /// </summary>
    /// <returns>The transaction's id, to ask about its commit if the answer is lost.</returns>
    private string Write(NpgsqlConnection connection, NpgsqlTransaction transaction, Dictionary<(string Collection, string Id), BsonDocument?> shared,
        Dictionary<(string Collection, string Id), BsonDocument?> own, long index)
    {
        // One round trip: the checks first, then the changes; nothing of it counts unless the checks
        // pass, since the transaction commits only afterwards.
        using var batch = new NpgsqlBatch(connection, transaction);
        var check = _node is null
            ? new NpgsqlBatchCommand($"SELECT pg_current_xact_id()::text, EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = {HoldKey1} AND objid = {HoldKey2} AND objsubid = 2 AND granted AND pid = $1)")
            : new NpgsqlBatchCommand("SELECT pg_current_xact_id()::text, true");
        if (_node is null)
        {
            check.Parameters.Add(new NpgsqlParameter { Value = _holdPid, NpgsqlDbType = NpgsqlDbType.Integer });
        }
        batch.BatchCommands.Add(check);
        foreach (var ((collection, id), document) in shared)
        {
            // Only nodes of several mark each row's commit and keep removals, for standbys to
            // follow; the only node leaves them be (a row update that changes no indexed column
            // stays in place), and nodes that start later read everything at once anyway.
            var command = (document, _node) switch
            {
                (null, null) => new NpgsqlBatchCommand("DELETE FROM vault_documents WHERE collection = $1 AND id = $2"),
                (null, _) => new NpgsqlBatchCommand("""
                    WITH gone AS (DELETE FROM vault_documents WHERE collection = $1 AND id = $2 RETURNING collection, id)
                    INSERT INTO vault_removed (collection, id, changed) SELECT collection, id, $3 FROM gone
                    ON CONFLICT (collection, id) DO UPDATE SET changed = excluded.changed
                    """),
                (_, null) => new NpgsqlBatchCommand("INSERT INTO vault_documents (collection, id, document) VALUES ($1, $2, $3) ON CONFLICT (collection, id) DO UPDATE SET document = excluded.document"),
                _ => new NpgsqlBatchCommand("INSERT INTO vault_documents (collection, id, changed, document) VALUES ($1, $2, $3, $4) ON CONFLICT (collection, id) DO UPDATE SET document = excluded.document, changed = excluded.changed"),
            };
            command.Parameters.Add(new NpgsqlParameter { Value = collection, NpgsqlDbType = NpgsqlDbType.Text });
            command.Parameters.Add(new NpgsqlParameter { Value = id, NpgsqlDbType = NpgsqlDbType.Text });
            if (_node is not null)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = index, NpgsqlDbType = NpgsqlDbType.Bigint });
            }
            if (document is not null)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = BsonSerializer.Serialize(document), NpgsqlDbType = NpgsqlDbType.Bytea });
            }
            batch.BatchCommands.Add(command);
        }
        foreach (var ((collection, id), document) in own)
        {
            var command = document is null
                ? new NpgsqlBatchCommand("DELETE FROM vault_node_documents WHERE node = $1 AND collection = $2 AND id = $3")
                : new NpgsqlBatchCommand("INSERT INTO vault_node_documents (node, collection, id, document) VALUES ($1, $2, $3, $4) ON CONFLICT (node, collection, id) DO UPDATE SET document = excluded.document");
            command.Parameters.Add(new NpgsqlParameter { Value = _node, NpgsqlDbType = NpgsqlDbType.Text });
            command.Parameters.Add(new NpgsqlParameter { Value = collection, NpgsqlDbType = NpgsqlDbType.Text });
            command.Parameters.Add(new NpgsqlParameter { Value = id, NpgsqlDbType = NpgsqlDbType.Text });
            if (document is not null)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = BsonSerializer.Serialize(document), NpgsqlDbType = NpgsqlDbType.Bytea });
            }
            batch.BatchCommands.Add(command);
        }
        NpgsqlBatchCommand? indexCommand = null;
        if (shared.Count > 0)
        {
            // The only node keeps no follow data, so it moves the horizon with every commit: an
            // image of several nodes older than its commits can only reload everything.
            indexCommand = new NpgsqlBatchCommand(_node is null
                ? """
                    INSERT INTO vault_store AS s (singleton, commit_index, removed_horizon) VALUES (true, $1, $1)
                    ON CONFLICT (singleton) DO UPDATE SET commit_index = excluded.commit_index, removed_horizon = excluded.commit_index WHERE s.commit_index = excluded.commit_index - 1
                    """
                : """
                    INSERT INTO vault_store AS s (singleton, commit_index) VALUES (true, $1)
                    ON CONFLICT (singleton) DO UPDATE SET commit_index = excluded.commit_index WHERE s.commit_index = excluded.commit_index - 1
                    """);
            indexCommand.Parameters.Add(new NpgsqlParameter { Value = index, NpgsqlDbType = NpgsqlDbType.Bigint });
            batch.BatchCommands.Add(indexCommand);
            if (index % 4096 == 0 && index > RemovedKept)
            {
                var prune = new NpgsqlBatchCommand("DELETE FROM vault_removed WHERE changed <= $1");
                prune.Parameters.Add(new NpgsqlParameter { Value = index - RemovedKept, NpgsqlDbType = NpgsqlDbType.Bigint });
                batch.BatchCommands.Add(prune);
                var horizon = new NpgsqlBatchCommand("UPDATE vault_store SET removed_horizon = $1");
                horizon.Parameters.Add(new NpgsqlParameter { Value = index - RemovedKept, NpgsqlDbType = NpgsqlDbType.Bigint });
                batch.BatchCommands.Add(horizon);
            }
            if (_node is not null)
            {
                var notify = new NpgsqlBatchCommand("SELECT pg_notify('vault_commit', $1::text)");
                notify.Parameters.Add(new NpgsqlParameter { Value = index, NpgsqlDbType = NpgsqlDbType.Bigint });
                batch.BatchCommands.Add(notify);
            }
        }
        string xid;
        bool held;
        using (var reader = batch.ExecuteReader())
        {
            reader.Read();
            xid = reader.GetString(0);
            held = reader.GetBoolean(1);
            while (reader.NextResult())
            {
                // The changes' results: none to read.
            }
        }
        if (!held)
        {
            ReleaseHold();
            throw new UnavailableException("storage unavailable: this node's hold on the database was lost (the database restarted?); it is taken again on the next write");
        }
        if (indexCommand is { RecordsAffected: 0 })
        {
            // Another writer moved the index: this image is behind. Nothing commits; catch up,
            // active or not.
            _behind = true;
            RequestRefresh();
            throw new UnavailableException("storage unavailable: this node's view of the database was behind (another node wrote); try again");
        }
        return xid;
    }

    private static void FailAll(List<IPendingWrite> batch, Exception error)
    {
        foreach (var write in batch)
        {
            write.Fail(error);
        }
    }

    /// <summary>One collection in memory: its ids in exact-string order, and its documents.</summary>
    private sealed class ImageCollection
    {
        public SortedSet<string> Ids { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, Entry> Documents { get; } = new(StringComparer.Ordinal);

        /// <summary>The ids that start with <paramref name="prefix"/>, in order.</summary>
        public IEnumerable<string> Under(string prefix)
        {
            if (prefix.Length == 0)
            {
                return Ids;
            }
            if (Ids.Count == 0 || string.CompareOrdinal(prefix, Ids.Max) > 0)
            {
                return [];
            }
            var upper = LiteDbStore.PrefixSuccessor(prefix);
            var view = upper is null || string.CompareOrdinal(upper, Ids.Max) > 0 ? Ids.GetViewBetween(prefix, Ids.Max!) : Ids.GetViewBetween(prefix, upper);
            return view.Where(id => id.StartsWith(prefix, StringComparison.Ordinal));
        }
    }

    /// <summary>A document in memory, and what <see cref="GetDerived"/> made of this version of it.</summary>
    private sealed class Entry(BsonDocument document)
    {
        public BsonDocument Document { get; } = document;

        public object? Derived { get; set; }
    }
}

internal static partial class PostgresStoreLog
{
    [LoggerMessage(1060, LogLevel.Warning, "The database refused a group of {Units} writes; they failed and the next group will try again")]
    public static partial void GroupRefused(ILogger logger, int units, Exception error);

    [LoggerMessage(1062, LogLevel.Warning, "The connection failed during commit {Index}; asked again, the database says it {Outcome}")]
    private static partial void CommitOutcomeResolved(ILogger logger, long index, string outcome, Exception error);

    public static void CommitOutcomeResolved(ILogger logger, long index, bool committed, Exception error) =>
        CommitOutcomeResolved(logger, index, committed ? "committed" : "did not commit", error);

    [LoggerMessage(1064, LogLevel.Critical, "A vault node without a node id holds this database (it took it while the database restarted?): this node's image may not follow it; stop that node")]
    public static partial void SharedHoldRefused(ILogger logger);

    [LoggerMessage(1063, LogLevel.Warning, "Following the active node's commits failed; trying again")]
    public static partial void FollowFailed(ILogger logger, Exception error);

    [LoggerMessage(1061, LogLevel.Critical, "The outcome of a commit to the database is unknown; the store refuses writes until a restart reloads it")]
    public static partial void CommitOutcomeLost(ILogger logger, Exception error);
}
