using Npgsql;

namespace Vault.Server.Storage.Postgres;

/// <summary>
/// The vault's tables in a shared PostgreSQL database, created and migrated by the server itself:
/// each version is a script applied once, in order, in one transaction with the version it brings,
/// under an advisory lock so that nodes starting together migrate once. A database whose schema is
/// newer than this server knows is refused (a node left behind in an upgrade must not write to it).
/// <para>
/// PostgreSQL sees what the data file sees: ciphertext and non-secret metadata (the barrier stays
/// above the store), plus who leads the group of nodes. Version 1: leadership; 2: documents; 3: what standbys follow
/// (each row's commit, the removals, documents of one node only).
/// </para>
/// </summary>
public static class PostgresSchema
{
    // Any constant: the key of the advisory lock that serialises migrations.
    private const long MigrationLock = 0x7661756c74L; // "vault"

    /// <summary>Version n is <c>Migrations[n - 1]</c>. Never edit a released one: add the next.</summary>
    private static readonly string[] Migrations =
    [
        // 1: leadership — one row: who is active, where it listens, its epoch (fencing token), until when (the database's clock).
        """
        CREATE TABLE vault_leader (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            holder text NOT NULL,
            address text NOT NULL,
            epoch bigint NOT NULL CHECK (epoch > 0),
            expires_at timestamptz NOT NULL
        );
        """,
        // 2: the store's documents (BSON, as the data file holds them: ciphertext and non-secret
        // metadata), keyed by collection and id compared as exact strings, and its commit index.
        """
        CREATE TABLE vault_documents (
            collection text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            document bytea NOT NULL,
            PRIMARY KEY (collection, id)
        );
        CREATE TABLE vault_store (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            commit_index bigint NOT NULL
        );
        """,
        // 3: several nodes. Each document carries the commit that last wrote it and each removal is
        // kept (up to a horizon) with its commit, so a standby reads only what changed since the
        // commit it has; documents of one node alone (its audit anchor) are kept apart, unfenced.
        """
        ALTER TABLE vault_documents ADD COLUMN changed bigint NOT NULL DEFAULT 0;
        CREATE INDEX vault_documents_changed ON vault_documents (changed);
        CREATE TABLE vault_removed (
            collection text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            changed bigint NOT NULL,
            PRIMARY KEY (collection, id)
        );
        CREATE INDEX vault_removed_changed ON vault_removed (changed);
        ALTER TABLE vault_store ADD COLUMN removed_horizon bigint NOT NULL DEFAULT 0;
        CREATE TABLE vault_node_documents (
            node text COLLATE "C" NOT NULL,
            collection text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            document bytea NOT NULL,
            PRIMARY KEY (node, collection, id)
        );
        """,
    ];

    /// <summary>The newest schema version this server knows.</summary>
    public static int Latest => Migrations.Length;

    /// <summary>Brings the database to <see cref="Latest"/>; returns the version it was at.</summary>
    /// <exception cref="InvalidOperationException">The database's schema is newer than this server knows.</exception>
    public static Task<int> MigrateAsync(NpgsqlDataSource database, CancellationToken cancellationToken) =>
        Task.Run(() => Migrate(database), cancellationToken);

    /// <summary>As <see cref="MigrateAsync"/>, on the caller's thread (a store opening).</summary>
    public static int Migrate(NpgsqlDataSource database)
    {
        using var connection = database.OpenConnection();
        using var transaction = connection.BeginTransaction();
        Execute(connection, transaction, $"SELECT pg_advisory_xact_lock({MigrationLock})");
        Execute(connection, transaction, "CREATE TABLE IF NOT EXISTS vault_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
        using var read = new NpgsqlCommand("SELECT coalesce(max(version), 0) FROM vault_schema", connection, transaction);
        var current = Convert.ToInt32(read.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        if (current > Latest)
        {
            throw new InvalidOperationException($"the database's vault schema is version {current}, newer than this server knows ({Latest}): upgrade this server before it joins");
        }
        for (var version = current + 1; version <= Latest; version++)
        {
            Execute(connection, transaction, Migrations[version - 1]);
            using var record = new NpgsqlCommand("INSERT INTO vault_schema (version) VALUES (@version)", connection, transaction);
            record.Parameters.AddWithValue("version", version);
            record.ExecuteNonQuery();
        }
        transaction.Commit();
        return current;
    }

    private static void Execute(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql)
    {
        using var command = new NpgsqlCommand(sql, connection, transaction);
        command.ExecuteNonQuery();
    }
}
