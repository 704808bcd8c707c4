using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Vault.Server.Audit;
using Vault.Server.Crypto;
using Vault.Server.Hosting;
using Vault.Server.Storage;
using Vault.Server.Storage.Postgres;

namespace Vault.Server.Backup;

/// <summary>
/// <c>Vault.Server migrate --from DIR --to postgres</c> and back (<c>--from postgres --to DIR</c>),
/// with every node stopped: moves every record of a vault between a LiteDB data directory and a
/// PostgreSQL database, byte for byte: every record it sends is checked with the vault's passphrase
/// or shares first (every seal verified, every encrypted value decrypted), and the far side read
/// back must hold exactly those bytes, as many as the source, before it says so. The connection string is read from
/// <c>--connection-file</c> or <c>$VAULT_POSTGRES_CONNECTION</c>, never an argument (it may hold a password).
/// <para>
/// The audit trail stays where it was written: its files are not records. The migrated vault's
/// chain begins after the last entry the source's anchor vouches for (its start is moved there, as
/// an archive would, and sealed), so <c>audit verify</c> passes on it and the source's audit files
/// are the archive of what came before. A destination that holds a vault is refused; a source a
/// server holds (LiteDB) or a database a node is running on (it holds the database's advisory
/// lock, which the migration takes for itself while it runs) is refused.
/// </para>
/// </summary>
internal static class OfflineMigrate
{
    public const string ConnectionVariable = "VAULT_POSTGRES_CONNECTION";
    private const string Postgres = "postgres";

    private const string Usage = "usage: Vault.Server migrate --from DIR|postgres --to DIR|postgres [--connection-file F] "
        + "[--passphrase-file F | --share-file F ...] (one side a data directory, the other postgres; the connection string from the file or $"
        + ConnectionVariable + ")";

    /// <summary>What was moved.</summary>
    internal sealed record Report(long Records, long Sealed, long Decrypted, long Index, ulong AuditContinuesAfter);

    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        try
        {
            var request = Parse(args);
            var report = await MigrateAsync(request.From, request.To, request.Connection,
                (shares, threshold) => OfflineBackup.Secret(shares, threshold, request.PassphraseFile, request.ShareFiles), cancellationToken);
            Console.Out.WriteLine($"migrated {report.Records} records ({report.Sealed} seals verified, {report.Decrypted} values decrypted) "
                + $"from {Describe(request.From)} to {Describe(request.To)} at commit index {report.Index}; "
                + (report.AuditContinuesAfter > 0
                    ? $"its audit trail continues after entry {report.AuditContinuesAfter} (keep the source's audit files: they are its archive)"
                    : "it had no audit trail yet"));
            return OfflineBackup.Ok;
        }
        catch (InvalidBackupException ex)
        {
            await Console.Error.WriteLineAsync($"vault: migrate: {ex.Message}; nothing migrated");
            return OfflineBackup.Damaged;
        }
        catch (Exception ex) when (ex is OfflineVerifyException or IOException or UnauthorizedAccessException or VaultException or LiteDB.LiteException
            or NpgsqlException or InvalidOperationException)
        {
            await Console.Error.WriteLineAsync($"vault: migrate: {ex.Message.ReplaceLineEndings(" ")}");
            return OfflineBackup.Error;
        }
    }

    private static string Describe(string side) => side == Postgres ? "PostgreSQL" : side;

    /// <param name="from">A data directory, or <c>postgres</c>.</param>
    /// <param name="to">The other kind.</param>
    /// <param name="connection">The PostgreSQL connection string.</param>
    /// <param name="secret">Asked for once the source's keyring says which kind of secret the vault takes.</param>
    public static async Task<Report> MigrateAsync(string from, string to, string connection, Func<int, int, OfflineBackup.UnsealSecret> secret, CancellationToken cancellationToken)
    {
        await using var database = PostgresConnection.Create(connection);
        // No node may run on the database meanwhile: hold it as a node would, for the whole move.
        await using var hold = await database.OpenConnectionAsync(cancellationToken);
        await using (var take = new NpgsqlCommand($"SELECT pg_try_advisory_lock({PostgresStore.HoldKey1}, {PostgresStore.HoldKey2})", hold))
        {
            if (!(bool)(await take.ExecuteScalarAsync(cancellationToken))!)
            {
                throw new OfflineVerifyException("a vault node is running on the database: stop every node first");
            }
        }
        if (from == Postgres)
        {
            to = Path.GetFullPath(to).TrimEnd(Path.DirectorySeparatorChar);
            OfflineBackup.RequireEmpty(to, "migrate");
            await RequireNoActiveNodeAsync(database, cancellationToken);
            var source = await PostgresDocuments.SnapshotAsync(database, cancellationToken);
            return await OfflineBackup.StageAsync(to, "migrate", async staging =>
            {
                var (migrated, report) = await PrepareAsync(source, secret, cancellationToken);
                LiteDbStore.Install(staging, migrated);
                using var installed = new LiteDbStore(staging, NullLogger<LiteDbStore>.Instance, documentTypes: null, Collections.All, cacheBytes: 0);
                return CheckFarSide(migrated, installed.Snapshot(), source, report);
            });
        }
        if (!await PostgresDocuments.IsEmptyAsync(database, cancellationToken))
        {
            throw new OfflineVerifyException("the database already holds a vault: migrate only into one that holds none");
        }
        var snapshot = await ReadDirectoryAsync(from, cancellationToken);
        var (moved, prepared) = await PrepareAsync(snapshot, secret, cancellationToken);
        await PostgresDocuments.InstallAsync(database, moved, cancellationToken);
        return CheckFarSide(moved, await PostgresDocuments.SnapshotAsync(database, cancellationToken), snapshot, prepared);
    }

    /// <summary>
    /// Unseals the source's keyring, moves the audit chain's start to after its anchor's entry, and
    /// checks every record of the result (seals, values): the snapshot the destination gets.
    /// </summary>
    private static async Task<(StoreSnapshot Migrated, Report Report)> PrepareAsync(StoreSnapshot source, Func<int, int, OfflineBackup.UnsealSecret> secret, CancellationToken cancellationToken)
    {
        var scratch = Directory.CreateTempSubdirectory("vault-migrate-");
        try
        {
            LiteDbStore.Install(scratch.FullName, source);
            using var store = new LiteDbStore(scratch.FullName, NullLogger<LiteDbStore>.Instance, documentTypes: null,
                Collections.All.Concat(source.Documents.Select(d => d.Collection)).Distinct(StringComparer.Ordinal), cacheBytes: 0);
            using var barrier = new SecurityBarrier(store, TimeProvider.System, NullLogger<SecurityBarrier>.Instance);
            var keyring = store.Get<KeyringRecord>(Collections.System, KeyringRecord.Id)
                ?? throw new OfflineVerifyException("the source holds no vault (no keyring)");
            await OfflineBackup.UnsealAsync(barrier, secret(keyring.SecretShares, keyring.SecretThreshold), cancellationToken);
            ulong continuesAfter = 0;
            if (store.Get<AuditAnchorRecord>(Collections.System, AuditAnchorRecord.Id) is { } anchor)
            {
                continuesAfter = anchor.Seq;
                var rebased = anchor.Copy();
                rebased.StartSeq = anchor.Seq + 1;
                rebased.StartPrevHash = anchor.Hash;
                rebased.StartFile = AuditFiles.Name(AuditFiles.Index(anchor.File) + 1);
                rebased.Seal = RecordSeal.Compute((purpose, value) => barrier.Hmac(purpose, value), Collections.System, AuditAnchorRecord.Id, rebased.Canonical());
                await store.WriteAsync(tx =>
                {
                    tx.Put(Collections.System, AuditAnchorRecord.Id, rebased);
                    return true;
                }, cancellationToken);
            }
            var migrated = store.Snapshot() with { Index = source.Index };
            // Every record the destination gets — the re-sealed anchor included — checked once here;
            // the far side is then held to these bytes.
            var (sealedCount, decrypted) = BackupRecordCheck.Run(store, barrier, migrated);
            return (migrated, new Report(migrated.Documents.Count, sealedCount, decrypted, source.Index, continuesAfter));
        }
        finally
        {
            scratch.Delete(recursive: true);
        }
    }

    /// <summary>
    /// The destination read back holds exactly the bytes that were checked and sent (so every one of
    /// its records verifies and decrypts as they did), and the source's count of records.
    /// </summary>
    private static Report CheckFarSide(StoreSnapshot sent, StoreSnapshot readBack, StoreSnapshot source, Report report)
    {
        if (readBack.Documents.Count != sent.Documents.Count || readBack.Documents.Count != source.Documents.Count)
        {
            throw new InvalidBackupException($"the destination holds {readBack.Documents.Count} records after the move, the source {source.Documents.Count}");
        }
        for (var i = 0; i < sent.Documents.Count; i++)
        {
            var (a, b) = (sent.Documents[i], readBack.Documents[i]);
            if (a.Collection != b.Collection || a.Id != b.Id || !a.Bson.AsSpan().SequenceEqual(b.Bson))
            {
                throw new InvalidBackupException($"a {a.Collection} record reads back differently from the destination");
            }
        }
        if (readBack.Index != sent.Index)
        {
            throw new InvalidBackupException($"the destination's commit index is {readBack.Index}, the source's {sent.Index}");
        }
        return report;
    }

    /// <summary>A stopped vault's data directory, read through a private copy.</summary>
    private static Task<StoreSnapshot> ReadDirectoryAsync(string dataDir, CancellationToken cancellationToken) =>
        StoppedDataDirectory.ReadAsync(dataDir, "stop every node first", copy =>
        {
            using var store = new LiteDbStore(copy, NullLogger<LiteDbStore>.Instance, documentTypes: null, Collections.All, cacheBytes: 0);
            return Task.FromResult(store.Snapshot());
        }, cancellationToken);

    private static async Task RequireNoActiveNodeAsync(NpgsqlDataSource database, CancellationToken cancellationToken)
    {
        await using var exists = database.CreateCommand("SELECT to_regclass('vault_documents') IS NOT NULL");
        if (!(bool)(await exists.ExecuteScalarAsync(cancellationToken))!)
        {
            throw new OfflineVerifyException("the database holds no vault");
        }
        if (await new LeaderLease(database, "migrate", "", TimeSpan.FromSeconds(1)).CurrentAsync(cancellationToken) is { Live: true } active)
        {
            throw new OfflineVerifyException($"node {active.Term.Holder} ({active.Term.Address}) is active on the database: stop every node first");
        }
    }

    private sealed record Request(string From, string To, string Connection, string? PassphraseFile, List<string> ShareFiles);

    private static Request Parse(string[] args)
    {
        string? from = null, to = null, connectionFile = null, passphraseFile = null;
        var shareFiles = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--from" when i + 1 < args.Length:
                    from = args[++i];
                    break;
                case "--to" when i + 1 < args.Length:
                    to = args[++i];
                    break;
                case "--connection-file" when i + 1 < args.Length:
                    connectionFile = args[++i];
                    break;
                case "--passphrase-file" when i + 1 < args.Length:
                    passphraseFile = args[++i];
                    break;
                case "--share-file" when i + 1 < args.Length:
                    shareFiles.Add(args[++i]);
                    break;
                case "--connection" or "--passphrase" or "--share":
                    throw new OfflineVerifyException("secrets are never arguments (other users can read the process list): use --connection-file, --passphrase-file, --share-file");
                default:
                    throw new OfflineVerifyException($"unexpected argument '{args[i]}'; {Usage}");
            }
        }
        if (from is null or "" || to is null or "")
        {
            throw new OfflineVerifyException($"--from and --to are required; {Usage}");
        }
        if ((from == Postgres) == (to == Postgres))
        {
            throw new OfflineVerifyException($"one side must be postgres and the other a data directory; {Usage}");
        }
        string connection;
        try
        {
            connection = connectionFile is not null ? File.ReadAllText(connectionFile).Trim() : Environment.GetEnvironmentVariable(ConnectionVariable) ?? "";
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OfflineVerifyException($"cannot read the connection string from {connectionFile}: {ex.Message}");
        }
        if (connection.Length == 0)
        {
            throw new OfflineVerifyException($"no PostgreSQL connection string: give --connection-file or set ${ConnectionVariable}");
        }
        try
        {
            _ = new NpgsqlConnectionStringBuilder(connection);
        }
        catch (ArgumentException)
        {
            // Its text is not repeated: it may hold a password.
            throw new OfflineVerifyException("the connection string is not one PostgreSQL takes (key=value pairs, e.g. Host=…;Database=…;Username=…)");
        }
        return new Request(from, to, connection, passphraseFile, shareFiles);
    }
}
