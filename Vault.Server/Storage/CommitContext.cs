namespace Vault.Server.Storage;

/// <summary>
/// Something that must become durable in the same commit as the writes made on its behalf — the
/// audit entry of the request that made them. The store knows nothing of what it is: it hands
/// over the tags its units of work carried (<see cref="CommitContext.Current"/> when each was
/// queued) and applies whatever the participant adds.
/// </summary>
public interface ICommitParticipant
{
    /// <summary>
    /// Called on the store's writer thread for each group whose successful units carried tags,
    /// before the group's log append. It may add changes of its own through
    /// <paramref name="writer"/>; they commit with the group. If it throws, the whole group fails
    /// with that exception and none of its writes apply.
    /// </summary>
    void BeforeCommit(IReadOnlyList<object> tags, IStoreWriter writer);

    /// <summary>
    /// Called on the writer thread when a group whose <see cref="BeforeCommit"/> returned could
    /// not be committed after all, and nothing of it applied: the disk refused its log append for
    /// want of space. The units fail with <see cref="DiskFullException"/>.
    /// </summary>
    void CommitFailed(IReadOnlyList<object> tags);
}

/// <summary>The tag that writes queued from the current asynchronous flow carry into their commit.</summary>
public static class CommitContext
{
    private static readonly AsyncLocal<object?> Ambient = new();

    public static object? Current
    {
        get => Ambient.Value;
        set => Ambient.Value = value;
    }
}
