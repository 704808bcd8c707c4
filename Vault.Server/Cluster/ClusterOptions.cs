namespace Vault.Server.Cluster;

/// <summary>Several nodes on one PostgreSQL database. The host fills it from its configuration.</summary>
public sealed class ClusterOptions
{
    /// <summary>This node's id; null: the only node (nothing of this area runs).</summary>
    public string? NodeId { get; set; }

    /// <summary><c>HOST:PORT</c> where the other nodes reach this one.</summary>
    public string? AdvertiseAddress { get; set; }

    /// <summary>How long a term lasts unless renewed; renewed every third of it.</summary>
    public TimeSpan LeaseTtl { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Whether the nodes serve TLS (forwarded calls go over https).</summary>
    public bool Tls { get; set; }

    /// <summary>PEM CA certificates the other nodes' certificates are checked against (unset: the machine's trusted CAs).</summary>
    public string? CaFile { get; set; }

    /// <summary>The largest request message a node reads (a standby buffers at most this to forward).</summary>
    public int MaxMessageBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>How long a standby holds a read that presents a commit index it has not seen yet.</summary>
    public TimeSpan ReadIndexWait { get; set; } = TimeSpan.FromSeconds(5);
}
