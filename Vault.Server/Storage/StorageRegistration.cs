using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Vault.Server.Storage;

/// <summary>Where and how the store keeps its files. The host fills it from its configuration.</summary>
public sealed class StorageOptions
{
    /// <summary>Where <c>vault.db</c>, its write-ahead log and the disk reserve live.</summary>
    public string DataDir { get; set; } = "";

    /// <summary>See <see cref="DiskReserve"/>.</summary>
    public long ReservedDiskBytes { get; set; } = DiskReserve.DefaultBytes;

    /// <summary>Memory for documents kept to serve reads.</summary>
    public long CacheBytes { get; set; } = LiteDbStore.DefaultCacheBytes;

    public const string LiteDb = "litedb";
    public const string Postgres = "postgres";

    /// <summary><see cref="LiteDb"/> or <see cref="Postgres"/>.</summary>
    public string Kind { get; set; } = LiteDb;

    /// <summary>For <see cref="Postgres"/>: the file holding the connection string.</summary>
    public string? ConnectionFile { get; set; }

    /// <summary>For <see cref="Postgres"/>: this node's id when it is one of several (null: the only node).</summary>
    public string? NodeId { get; set; }
}

/// <summary>
/// A document each node of several keeps for itself (its audit anchor): written by that node
/// whether or not it is the active one, never seen by the others.
/// </summary>
public sealed record NodeLocalDocument(string Collection, string Id);

/// <summary>A document type an area stores. The types nested in it are found from its properties.</summary>
public sealed record StoredDocumentType(Type Type);

public static class StorageRegistration
{
    /// <summary>The store and its disk reserve, holding the document types every area declared with <see cref="AddStoredDocuments"/>.</summary>
    public static IServiceCollection AddVaultStorage(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<StorageOptions>();
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<StorageOptions>>().Value;
            return new DiskReserve(options.DataDir, options.ReservedDiskBytes, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<DiskReserve>>());
        });
        services.AddSingleton<IVaultStore>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<StorageOptions>>().Value;
            if (options.Kind == StorageOptions.Postgres)
            {
                var logger = sp.GetRequiredService<ILogger<Postgres.PostgresStore>>();
                var types = sp.GetServices<StoredDocumentType>().Select(t => t.Type);
                if (options.NodeId is null)
                {
                    // The only node on its database.
                    return new Postgres.PostgresStore(Postgres.PostgresConnection.Open(options.ConnectionFile), logger, types, term: null, ownsDatabase: true);
                }
                // One of several: writes only with the term the leadership loop holds.
                var term = sp.GetRequiredService<Postgres.ITermSource>();
                return new Postgres.PostgresStore(Postgres.PostgresConnection.Open(options.ConnectionFile), logger, types, () => term.Term, ownsDatabase: true,
                    node: options.NodeId, nodeLocal: sp.GetServices<NodeLocalDocument>().Select(d => (d.Collection, d.Id)));
            }
            return new LiteDbStore(
                options.DataDir,
                sp.GetRequiredService<ILogger<LiteDbStore>>(),
                sp.GetServices<StoredDocumentType>().Select(t => t.Type),
                Collections.All,
                options.CacheBytes,
                sp.GetRequiredService<DiskReserve>(),
                Collections.WriteMostly);
        });
        return services;
    }

    /// <summary>
    /// Declares the document types an area stores. The store maps them (and every type nested in
    /// them) before any request runs, and refuses to read or write any other type, every time.
    /// </summary>
    public static IServiceCollection AddStoredDocuments(this IServiceCollection services, params Type[] types)
    {
        foreach (var type in types)
        {
            services.AddSingleton(new StoredDocumentType(type));
        }
        return services;
    }
}
