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

    private NodeRole(string? nodeId, string? ownAddress)
    {
        NodeId = nodeId;
        OwnAddress = ownAddress;
    }

    /// <summary>The only node on its store: always active.</summary>
    public static NodeRole Alone() => new(null, null);

    /// <summary>One of several, reached at <paramref name="advertiseAddress"/>: a standby until it takes a term.</summary>
    public static NodeRole Clustered(string nodeId, string advertiseAddress) => new(nodeId, advertiseAddress);

    /// <summary>Where the other nodes reach this one (null for the only node).</summary>
    public string? OwnAddress { get; }

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
    /// <param name="validUntil">Until when (<see cref="Environment.TickCount64"/>) it may be used without a renewal: counted from before
    /// the request that took or renewed it was sent, and shorter than the term, so it ends before the database's expiry.</param>
    internal void Promote(Leadership term, long validUntil)
    {
        Interlocked.Exchange(ref _validUntil, validUntil);
        _becameActiveAt = TimeProvider.System.GetUtcNow();
        _activeAddress = term.Address;
        _term = term;
        ActiveChanged?.Invoke(true);
    }

    internal void Renewed(Leadership term, long validUntil)
    {
        Interlocked.Exchange(ref _validUntil, validUntil);
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
