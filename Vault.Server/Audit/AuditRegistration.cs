using Microsoft.Extensions.DependencyInjection;
using Vault.Server.Storage;

namespace Vault.Server.Audit;

/// <summary>Where and how the audit trail is written. The host fills it from its configuration.</summary>
public sealed class AuditOptions
{
    /// <summary>The directory of the audit files (the host's is <c>DATA_DIR/audit</c>).</summary>
    public string Directory { get; set; } = "";

    /// <summary>A file rolls over to the next once it reaches this size.</summary>
    public long MaxFileBytes { get; set; } = 64L * 1024 * 1024;

    public AuditFlush Flush { get; set; } = AuditFlush.Grouped;
}

public static class AuditRegistration
{
    /// <summary>The hash-chained audit log and the anchor it keeps in the store.</summary>
    public static IServiceCollection AddVaultAudit(this IServiceCollection services)
    {
        services.AddOptions<AuditOptions>();
        services.AddSingleton<AuditLog>();
        return services.AddStoredDocuments(typeof(AuditAnchorRecord));
    }
}
