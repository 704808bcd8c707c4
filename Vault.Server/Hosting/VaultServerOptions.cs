using System.ComponentModel.DataAnnotations;

namespace Vault.Server.Hosting;

/// <summary>Server settings, bound from the "Vault" configuration section (appsettings.json,
/// VAULT__* environment variables, command line).</summary>
public sealed class VaultServerOptions : IValidatableObject
{
    public const string Section = "Vault";

    /// <summary>The default <see cref="MaxInFlightBytes"/>, in multiples of <see cref="MaxSecretBytes"/>.</summary>
    public const int DefaultInFlightSecrets = 16;

    // Room beside a value in a request message: its path, keys and protobuf framing.
    private const int MessageOverheadBytes = 64 * 1024;

    /// <summary>Where the data file lives. Required unless <see cref="Dev"/>.</summary>
    public string? DataDir { get; set; }

    /// <summary>HOST:PORT to listen on.</summary>
    public string Listen { get; set; } = "127.0.0.1:8200";

    /// <summary><c>HOST:PORT</c> of the Prometheus scrape endpoint's own listener (<c>/metrics</c>); unset: none.</summary>
    public string? MetricsListen { get; set; }

    /// <summary>A file holding the bearer token scrapes must present; unset: none needed.</summary>
    public string? MetricsTokenFile { get; set; }

    /// <summary>PEM certificate chain; with <see cref="TlsKeyFile"/> the server serves TLS.</summary>
    public string? TlsCertFile { get; set; }

    /// <summary>PEM private key for <see cref="TlsCertFile"/>.</summary>
    public string? TlsKeyFile { get; set; }

    /// <summary>Allows plaintext HTTP/2 on a non-loopback address. Off by default.</summary>
    public bool InsecurePlaintext { get; set; }

    /// <summary>Dev mode: temporary data dir, auto-initialised and unsealed, root token printed.</summary>
    public bool Dev { get; set; }

    /// <summary>Set by dev mode when it made <see cref="DataDir"/> itself; it is deleted on exit.</summary>
    public bool DataDirIsTemporary { get; set; }

    /// <summary>Dev mode only: use this root token instead of a random one.</summary>
    public string? DevRootToken { get; set; }

    /// <summary>Largest accepted secret value (keys and values, UTF-8 bytes).</summary>
    [Range(1024, 4 * 1024 * 1024)]
    public int MaxSecretBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// Bytes of requests being handled plus the store's backlog (changes acknowledged but not yet
    /// in the data file) beyond which a request is refused <c>RESOURCE_EXHAUSTED</c>. Unset: 16 ×
    /// <see cref="MaxSecretBytes"/>. See <see cref="RequestAdmission"/>.
    /// </summary>
    public long? MaxInFlightBytes { get; set; }

    /// <summary>
    /// How long a large request (over 64 KiB) that does not fit in <see cref="MaxInFlightBytes"/> may
    /// wait, in line, for room before it is refused; zero refuses at once.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:05:00")]
    public TimeSpan AdmissionQueueTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary><see cref="MaxInFlightBytes"/> as configured, or its default.</summary>
    public long InFlightLimitBytes => MaxInFlightBytes ?? (long)DefaultInFlightSecrets * MaxSecretBytes;

    /// <summary>
    /// The largest request message the server reads: a secret of <see cref="MaxSecretBytes"/> with
    /// room for its path and framing, and never less than grpc-dotnet's default of 4 MiB.
    /// </summary>
    public int MaxMessageBytes => Math.Max(4 * 1024 * 1024, MaxSecretBytes + MessageOverheadBytes);

    /// <summary>
    /// Space held back on the data directory's filesystem (a file of zeros, <c>reserved-space</c>):
    /// given up when the disk fills, so that the refusals can still be audited and acknowledged
    /// writes moved into the data file; writes resume once it can be set aside again. 0: none.
    /// </summary>
    [Range(0, long.MaxValue)]
    public long ReservedDiskBytes { get; set; } = Storage.DiskReserve.DefaultBytes;

    /// <summary>
    /// Where the vault's records live: <c>litedb</c> (the data directory; the default) or
    /// <c>postgres</c> (a database, <see cref="StorageConnectionFile"/>). The data directory holds the
    /// audit log either way.
    /// </summary>
    public string StorageKind { get; set; } = Storage.StorageOptions.LiteDb;

    /// <summary>For <c>postgres</c>: a file holding the Npgsql connection string (it may hold a password: never an argument).</summary>
    public string? StorageConnectionFile { get; set; }

    /// <summary>
    /// This node's id when several nodes share one PostgreSQL database (<see cref="StorageKind"/>
    /// <c>postgres</c>): unique among them and kept across restarts. Unset: the only node.
    /// </summary>
    [RegularExpression("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    public string? NodeId { get; set; }

    /// <summary>With <see cref="NodeId"/>: <c>HOST:PORT</c> where the other nodes reach this one (they forward writes to the active node there).</summary>
    public string? AdvertiseAddress { get; set; }

    /// <summary>With <see cref="NodeId"/> and TLS: PEM CA certificates the other nodes' certificates are checked against when a call is forwarded (unset: the machine's trusted CAs).</summary>
    public string? ClusterCaFile { get; set; }

    /// <summary>With <see cref="NodeId"/>: how long the active node's term lasts unless renewed (a third of it between renewals); a standby takes over once it lapses.</summary>
    [Range(typeof(TimeSpan), "00:00:02", "00:05:00")]
    public TimeSpan LeaderLeaseTtl { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How audit entries are flushed: Grouped (one fsync per group of concurrent entries) or EveryEntry.</summary>
    public Audit.AuditFlush AuditFlush { get; set; } = Audit.AuditFlush.Grouped;

    /// <summary>
    /// How long the audit entry of a read-only request (one that changed nothing) may wait for
    /// its fsync to start, at most 1 s. It is always written before the reply goes; 0 makes it
    /// durable (fsync'd and anchored) before the reply, as an entry of a change always is.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:01")]
    public TimeSpan AuditReadOnlyFlushWindow { get; set; } = Audit.AuditOptions.DefaultReadOnlyFlushWindow;

    /// <summary>An audit file rolls over to the next once it reaches this size.</summary>
    [Range(64 * 1024, long.MaxValue)]
    public long AuditMaxFileBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>Argon2id memory for a new vault, in KiB, when init does not say.</summary>
    [Range(8 * 1024, 4 * 1024 * 1024)]
    public int KdfMemoryKib { get; set; } = 64 * 1024;

    /// <summary>Argon2id passes for a new vault, when init does not say.</summary>
    [Range(1, 64)]
    public int KdfIterations { get; set; } = 3;

    /// <summary>Argon2id lanes for a new vault, when init does not say.</summary>
    [Range(1, 16)]
    public int KdfParallelism { get; set; } = 2;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        // Large requests may use three quarters of the bound (the rest is kept for small ones), and
        // the largest message must fit in that with room to spare.
        if (MaxInFlightBytes is { } bytes && bytes < 2L * MaxMessageBytes)
        {
            yield return new ValidationResult(
                $"Vault:MaxInFlightBytes ({bytes}) must be at least twice the largest request message ({MaxMessageBytes} bytes, from Vault:MaxSecretBytes), i.e. at least {2L * MaxMessageBytes}",
                [nameof(MaxInFlightBytes)]);
        }
    }
}
