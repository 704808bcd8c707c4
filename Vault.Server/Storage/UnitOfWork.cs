using LiteDB;

namespace Vault.Server.Storage;

/// <summary>What a unit of work reads beneath its own writes and its group's: the store's acknowledged state.</summary>
internal interface IUnitBase
{
    /// <summary>The declared document types (null: any).</summary>
    HashSet<Type>? DocumentTypes { get; }

    T? Get<T>(string collection, string id) where T : class;

    /// <summary>The acknowledged documents under an exact-string prefix, overlaid with <paramref name="newer"/>, in id order.</summary>
    List<KeyValuePair<string, T>> ListWithin<T>(string collection, string idPrefix, int limit, params IEnumerable<KeyValuePair<string, BsonDocument?>>[] newer) where T : class;
}

/// <summary>A unit of work queued for a store's writer: run in a group, then completed or failed with it (every store's).</summary>
internal interface IPendingWrite
{
    /// <summary>The <see cref="CommitContext"/> tag it was queued with.</summary>
    object? Tag { get; }

    /// <summary>Runs the work; false if it threw (its writes are then discarded).</summary>
    bool Run(IStoreWriter writer);

    void Complete();

    void Fail(Exception error);
}

internal sealed class PendingWrite<TResult>(Func<IStoreWriter, TResult> work, object? tag) : IPendingWrite
{
    public object? Tag { get; } = tag;

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

    /// <summary>A unit whose own work threw keeps its own error; the others get the group's.</summary>
    public void Fail(Exception error) => _tcs.TrySetException(_error ?? error);
}

/// <summary>
/// One caller's writes, held aside until its work returns so that a throwing unit leaves
/// nothing behind in the group. Reads see the unit's own writes first, then those of earlier
/// units in the group, then the store's acknowledged state.
/// </summary>
internal sealed class UnitOfWork(IUnitBase store, Dictionary<(string Collection, string Id), BsonDocument?> group) : IStoreWriter
{
    private readonly Dictionary<(string Collection, string Id), BsonDocument?> _own = [];

    public T? Get<T>(string collection, string id) where T : class
    {
        LiteDbStore.RequireDeclared<T>(store.DocumentTypes);
        if (_own.TryGetValue((collection, id), out var doc) || group.TryGetValue((collection, id), out doc))
        {
            return doc is null ? null : LiteDbStore.Mapper.ToObject<T>(doc);
        }
        return store.Get<T>(collection, id);
    }

    public IReadOnlyList<KeyValuePair<string, T>> List<T>(string collection, string idPrefix, int limit = int.MaxValue) where T : class =>
        ListChecked<T>(collection, idPrefix, limit, Under(group, collection, idPrefix), Under(_own, collection, idPrefix));

    private IReadOnlyList<KeyValuePair<string, T>> ListChecked<T>(string collection, string idPrefix, int limit, params IEnumerable<KeyValuePair<string, BsonDocument?>>[] newer) where T : class
    {
        LiteDbStore.RequireDeclared<T>(store.DocumentTypes);
        return store.ListWithin<T>(collection, idPrefix, limit, newer);
    }

    public void Put<T>(string collection, string id, T document) where T : class
    {
        LiteDbStore.RequireDeclared<T>(store.DocumentTypes);
        var doc = LiteDbStore.Mapper.ToDocument(document);
        doc["_id"] = id;
        _own[(collection, id)] = doc;
    }

    public void Delete(string collection, string id) => _own[(collection, id)] = null;

    /// <summary>Hands the unit's changes to its group, once its work has returned.</summary>
    public void Apply()
    {
        foreach (var (key, doc) in _own)
        {
            group[key] = doc;
        }
    }

    private static IEnumerable<KeyValuePair<string, BsonDocument?>> Under(Dictionary<(string Collection, string Id), BsonDocument?> changes, string collection, string idPrefix) =>
        changes.Where(c => c.Key.Collection == collection && c.Key.Id.StartsWith(idPrefix, StringComparison.Ordinal))
            .Select(c => KeyValuePair.Create(c.Key.Id, c.Value));
}

/// <summary>What both stores' writers do with a group before writing it: run its units, then the commit participant.</summary>
internal static class UnitGroup
{
    /// <summary>
    /// Runs each unit of <paramref name="batch"/> into <paramref name="changes"/> (a unit that throws
    /// adds nothing), and returns the tags of those that succeeded.
    /// </summary>
    public static List<object> RunUnits(IUnitBase store, List<IPendingWrite> batch, Dictionary<(string Collection, string Id), BsonDocument?> changes)
    {
        var tags = new List<object>();
        foreach (var write in batch)
        {
            var unit = new UnitOfWork(store, changes);
            if (write.Run(unit))
            {
                unit.Apply();
                if (write.Tag is { } tag)
                {
                    tags.Add(tag);
                }
            }
        }
        return tags;
    }

    /// <summary>
    /// Lets <paramref name="participant"/> (the audit log) add its changes for the tagged units: what
    /// it makes durable is durable before the group's commit, and if it throws, nothing of the group applies.
    /// </summary>
    public static void RunParticipant(IUnitBase store, ICommitParticipant? participant, List<object> tags, Dictionary<(string Collection, string Id), BsonDocument?> changes)
    {
        if (tags.Count > 0 && participant is not null)
        {
            var unit = new UnitOfWork(store, changes);
            participant.BeforeCommit(tags, unit);
            unit.Apply();
        }
    }
}
