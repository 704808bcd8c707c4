namespace Vault.Server.Storage;

/// <summary>Reads documents by collection and id.</summary>
public interface IStoreReader
{
    T? Get<T>(string collection, string id) where T : class;

    /// <summary>Documents whose id starts with <paramref name="idPrefix"/>, in id order.</summary>
    IReadOnlyList<KeyValuePair<string, T>> List<T>(string collection, string idPrefix, int limit = int.MaxValue) where T : class;
}

/// <summary>Writes inside one unit of work; nothing is visible to others until it commits.</summary>
public interface IStoreWriter : IStoreReader
{
    void Put<T>(string collection, string id, T document) where T : class;

    void Delete(string collection, string id);
}

/// <summary>
/// The vault's storage: documents of ciphertext and non-secret metadata. Writes are units of
/// work that either apply whole or not at all, and are durable (on disk, fsync'd) when their
/// task completes. Behind an interface so a shared PostgreSQL store can serve several nodes later.
/// </summary>
public interface IVaultStore : IStoreReader, IDisposable
{
    /// <summary>
    /// Runs <paramref name="work"/> in a transaction with other concurrent writes (group commit)
    /// and completes once it is on disk. If <paramref name="work"/> throws, none of its writes apply
    /// and the exception is rethrown to the caller.
    /// </summary>
    Task<TResult> WriteAsync<TResult>(Func<IStoreWriter, TResult> work, CancellationToken cancellationToken);

    /// <summary>
    /// Like <see cref="IStoreReader.Get{T}"/>, but keeps what <paramref name="derive"/> makes of the
    /// document (a verified record, a compiled policy) until the document changes, so the work is
    /// done once per version rather than once per read. The result is shared between callers:
    /// never mutate it. If <paramref name="derive"/> throws, nothing is kept.
    /// </summary>
    TDerived? GetDerived<T, TDerived>(string collection, string id, Func<T, TDerived> derive) where T : class where TDerived : class;

    /// <summary>
    /// Every document of <paramref name="collection"/> as committed, in id order, read a page at a
    /// time with no lock held between pages: a scan of a large collection (a million leases) that
    /// holds neither reads nor writes up and never holds the whole collection in memory. A document
    /// changed while the scan runs may be seen as it was or as it became (deleted: or not at all).
    /// </summary>
    IEnumerable<KeyValuePair<string, T>> Scan<T>(string collection, int pageSize = 1000) where T : class;

    /// <summary>Where the store stands in its commit order: raised by every acknowledged commit, never lowered.</summary>
    long CommitIndex { get; }

    /// <summary>
    /// Every document as it stood after one commit (its index in the snapshot), taken while
    /// writes go on: the consistent copy an online backup is made of.
    /// </summary>
    StoreSnapshot Snapshot();

    /// <summary>Makes <paramref name="participant"/> part of every commit whose units carry a <see cref="CommitContext"/> tag (one participant).</summary>
    void Enlist(ICommitParticipant participant);

    /// <summary>Bytes of acknowledged changes the store still holds in memory (not yet in its data file).</summary>
    long PendingBytes { get; }

    /// <summary>
    /// Why the store refuses writes — the disk is full (until space is freed), or it could not
    /// make a write durable (until a restart) — or null while it takes them.
    /// </summary>
    string? Failure { get; }

    /// <summary>Raised when the store starts or stops refusing writes, with whether it now does.</summary>
    event Action<bool>? FailingChanged;

    /// <summary>
    /// Raised with the documents another node changed underneath this one (a standby following the
    /// active), once reads see them: what a cache kept outside the store must look at again.
    /// Never raised by a store this process alone writes.
    /// </summary>
    event Action<IReadOnlyCollection<(string Collection, string Id)>>? ChangedElsewhere;

    /// <summary>
    /// Waits until this node's reads see commit <paramref name="index"/> (read-your-writes on a
    /// node other than the one that wrote); false if <paramref name="timeout"/> passed first.
    /// </summary>
    Task<bool> WaitForIndexAsync(long index, TimeSpan timeout, CancellationToken cancellationToken);
}

/// <summary>Collection names, kept in one place.</summary>
public static class Collections
{
    public const string System = "system";
    public const string SecretMetadata = "kv_meta";
    public const string SecretVersions = "kv_versions";
    public const string Tokens = "tokens";
    public const string TokenAccessors = "token_accessors";
    public const string TokenChildren = "token_children";
    public const string Policies = "policies";
    public const string AppRoles = "approles";
    public const string AppRoleIds = "approle_ids";
    public const string SecretIds = "approle_secret_ids";
    public const string RotationTargets = "rotation_targets";
    public const string RotationHistory = "rotation_history";
    public const string DynamicRoles = "dynamic_roles";
    public const string Leases = "leases";
    public const string CheckoutSets = "checkout_sets";
    public const string Entities = "entities";
    public const string Groups = "groups";
    public const string UserpassUsers = "userpass_users";
    public const string Mfa = "mfa";
    public const string Grants = "grants";
    public const string AccessRequests = "access_requests";
    public const string OpenAccessRequests = "access_requests_open";
    public const string Usage = "usage";
    public const string Idempotency = "idempotency";

    /// <summary>
    /// Collections written in bulk and read rarely (the usage tracker's last uses, read by a
    /// report): a store does not keep their documents in its read cache, where 100,000 of them
    /// would take the memory of the secrets they describe.
    /// </summary>
    public static IReadOnlyList<string> WriteMostly { get; } = [Usage];

    public static IReadOnlyList<string> All { get; } = [System, SecretMetadata, SecretVersions, Tokens, TokenAccessors, TokenChildren, Policies, AppRoles, AppRoleIds, SecretIds, RotationTargets, RotationHistory, DynamicRoles, Leases, CheckoutSets, Entities, Groups, UserpassUsers, Mfa, Grants, AccessRequests, OpenAccessRequests, Usage, Idempotency];
}
