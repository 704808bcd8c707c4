using Vault.Server.Storage.Postgres;

namespace Vault.Server.Cluster;

/// <summary>
/// Whether this node is the active one. The only node always is. One of several is active while
/// it holds a live term (<see cref="LeadershipLoop"/> takes, renews and gives it up); the others
/// are standbys: they serve reads from their image of the database and forward everything else to
/// the active node at <see cref="ActiveAddress"/>. Background work that writes — scheduled
/// rotation, lease reaping, rewrap — runs only while <see cref="IsActive"/>.
/// </summary>
public sealed class NodeRole : ITermSource
{
    private volatile Leadership? _term;
    // Written before the term is published (a volatile write), read after it.
#pragma warning disable IDE0032
    private volatile string? _activeAddress;
    private long _validUntil;
    private DateTimeOffset? _becameActiveAt;
#pragma warning restore IDE0032

    private NodeRole(string? nodeId) => NodeId = nodeId;

    /// <summary>The only node on its store: always active.</summary>
    public static NodeRole Alone() => new(null);

    /// <summary>One of several: a standby until it takes a term.</summary>
    public static NodeRole Clustered(string nodeId) => new(nodeId);

    /// <summary>This node's id among several; null for the only node.</summary>
    public string? NodeId { get; }

    public bool IsClustered => NodeId is not null;

    public bool IsActive => NodeId is null || Term is not null;

    /// <summary>
    /// The live term, or null: also once this node has not renewed it for longer than it may
    /// (<see cref="Promote"/>'s bound, on this machine's monotonic clock) — a node cut off from the
    /// database stops acting as the active one by itself, before its term can have lapsed there.
    /// </summary>
    public Leadership? Term => _term is { } term && Environment.TickCount64 < Interlocked.Read(ref _validUntil) ? term : null;

    /// <summary>The term this node took and has not given up, whether or not it may still use it.</summary>
    internal Leadership? HeldTerm => _term;

    /// <summary>Where the active node serves (this node's own address while it is active); null while none is known.</summary>
    public string? ActiveAddress => _activeAddress;

    /// <summary>When this node last became active (system clock); null for the only node, or one never active.</summary>
    public DateTimeOffset? BecameActiveAt => _becameActiveAt;

    /// <summary>Raised when this node becomes active (true) or steps down (false); the only node never changes.</summary>
    public event Action<bool>? ActiveChanged;

    /// <param name="term">The term taken.</param>
    /// <param name="usableFor">How long it may be used without a renewal (less than the term, measured from when it was taken or renewed).</param>
    internal void Promote(Leadership term, TimeSpan usableFor)
    {
        Interlocked.Exchange(ref _validUntil, Environment.TickCount64 + (long)usableFor.TotalMilliseconds);
        _becameActiveAt = TimeProvider.System.GetUtcNow();
        _activeAddress = term.Address;
        _term = term;
        ActiveChanged?.Invoke(true);
    }

    internal void Renewed(Leadership term, TimeSpan usableFor)
    {
        Interlocked.Exchange(ref _validUntil, Environment.TickCount64 + (long)usableFor.TotalMilliseconds);
        _term = term;
    }

    internal void StepDown()
    {
        if (_term is null)
        {
            return;
        }
        _term = null;
        _activeAddress = null;
        ActiveChanged?.Invoke(false);
    }

    internal void SawActive(string? address) => _activeAddress = address;
}
