using System.Diagnostics.Metrics;

namespace Vault.Server.Telemetry;

/// <summary>
/// Instruments of the store and the audit log, which are built below dependency injection: one
/// meter for the process (named <see cref="VaultMetrics.MeterName"/>, so the vault's exporter
/// reads it with the rest). A server process holds one vault; several vaults in one process (tests)
/// add into the same series.
/// </summary>
internal static class ProcessMetrics
{
    private static readonly Meter Meter = new(VaultMetrics.MeterName);

    /// <summary>A group commit of the store: running its units, the log append and fsync, in seconds.</summary>
    public static readonly Histogram<double> StoreCommitDuration = Meter.CreateHistogram<double>("vault.store.commit.duration", unit: "s",
        description: "How long each group commit took: running its units, the write-ahead-log append and fsync.");

    /// <summary>Units of work in each group commit.</summary>
    public static readonly Histogram<int> StoreCommitSize = Meter.CreateHistogram<int>("vault.store.commit.units", unit: "{unit}",
        description: "Units of work (writes of requests) committed together in each group commit.");

    /// <summary>Bytes appended to the write-ahead log (records with their headers).</summary>
    public static readonly Counter<long> WalBytes = Meter.CreateCounter<long>("vault.store.wal.written", unit: "By",
        description: "Bytes appended to the store's write-ahead log.");

    /// <summary>One fsync of the write-ahead log, in seconds.</summary>
    public static readonly Histogram<double> WalFsyncDuration = Meter.CreateHistogram<double>("vault.store.wal.fsync.duration", unit: "s",
        description: "How long each fsync of the write-ahead log took.");

    /// <summary>Reads of a document answered from memory (hit: a pending change or the read cache) or from the data file (miss).</summary>
    public static readonly Counter<long> CacheLookups = Meter.CreateCounter<long>("vault.store.cache.lookups", unit: "{lookup}",
        description: "Document reads by result: hit (answered from memory) or miss (read from the data file).");

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<object, Func<long>> CacheSizes = new();

    static ProcessMetrics()
    {
        // Observed, not added to: the series exists from the start (0), so an alert on its increase
        // has something to compare with.
        Meter.CreateObservableCounter("vault.audit.write.failures", () => Volatile.Read(ref _auditWriteFailures), unit: "{group}",
            description: "Groups of audit entries that could not be written; their requests were refused.");
        Meter.CreateObservableGauge("vault.store.cache.size", () => CacheSizes.Values.Sum(size => size()), unit: "By",
            description: "Bytes the store's read cache holds (an estimate, against its budget).");
    }

    /// <summary>Counts <paramref name="size"/> into the read-cache gauge until <see cref="ForgetCache"/>.</summary>
    public static void TrackCache(object owner, Func<long> size) => CacheSizes[owner] = size;

    public static void ForgetCache(object owner) => CacheSizes.TryRemove(owner, out _);

    /// <summary>A group of audit entries written (and fsync'd when one needed it), in seconds.</summary>
    public static readonly Histogram<double> AuditWriteDuration = Meter.CreateHistogram<double>("vault.audit.write.duration", unit: "s",
        description: "How long each group of audit entries took to write (and fsync, when an entry of a change needed it).");

    private static long _auditWriteFailures;

    /// <summary>Counts a group of audit entries that could not be written (their requests were refused).</summary>
    public static void AuditWriteFailed() => Interlocked.Increment(ref _auditWriteFailures);
}
