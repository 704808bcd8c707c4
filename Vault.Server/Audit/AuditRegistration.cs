using Microsoft.Extensions.DependencyInjection;
using Vault.Server.Storage;

namespace Vault.Server.Audit;

/// <summary>How audit entries are written: together with the others queued at the time, or one by one.</summary>
public enum AuditFlush
{
    /// <summary>Entries queued together are written (and, when one must be durable before its reply, fsync'd) once: group commit.</summary>
    Grouped,
    /// <summary>Every entry is written (and fsync'd, when it must be durable before its reply) on its own.</summary>
    EveryEntry,
}

/// <summary>Where and how the audit trail is written. The host fills it from its configuration.</summary>
public sealed class AuditOptions
{
    /// <summary>The directory of the audit files (the host's is <c>DATA_DIR/audit</c>).</summary>
    public string Directory { get; set; } = "";

    /// <summary>A file rolls over to the next once it reaches this size.</summary>
    public long MaxFileBytes { get; set; } = 64L * 1024 * 1024;

    public AuditFlush Flush { get; set; } = AuditFlush.Grouped;

    /// <summary>
    /// How long the entry of a read-only request may wait for its fsync to start: it is written
    /// before the reply and fsync'd and anchored by the flusher, at most once per window.
    /// Zero: fsync'd and anchored before the reply, like every entry of a change.
    /// </summary>
    public TimeSpan ReadOnlyFlushWindow { get; set; } = DefaultReadOnlyFlushWindow;

    public static readonly TimeSpan DefaultReadOnlyFlushWindow = TimeSpan.FromMilliseconds(10);
}

public static class AuditRegistration
{
    /// <summary>The hash-chained audit log and the anchor it keeps in the store.</summary>
    public static IServiceCollection AddVaultAudit(this IServiceCollection services)
    {
        services.AddOptions<AuditOptions>();
        services.AddSingleton<AuditLog>();
        // Each node of several writes its own audit log, so each anchors its own chain.
        services.AddSingleton(new NodeLocalDocument(Collections.System, AuditAnchorRecord.Id));
        return services.AddStoredDocuments(typeof(AuditAnchorRecord));
    }
}
