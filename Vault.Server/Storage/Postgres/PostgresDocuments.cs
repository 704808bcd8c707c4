using Npgsql;
using NpgsqlTypes;

namespace Vault.Server.Storage.Postgres;

/// <summary>
/// The vault's documents in PostgreSQL (schema version 2), whole: a consistent snapshot of them
/// and installing one into a database that holds no vault yet. What offline migration between
/// LiteDB and PostgreSQL is made of; the PostgreSQL store will read and write the same table.
/// </summary>
public static class PostgresDocuments
{
    /// <summary>Every document and the commit index, read in one repeatable-read transaction.</summary>
    public static Task<StoreSnapshot> SnapshotAsync(NpgsqlDataSource database, CancellationToken cancellationToken) =>
        Task.Run(() => Snapshot(database), cancellationToken);

    /// <summary>As <see cref="SnapshotAsync"/>, on the caller's thread (a store opening).</summary>
    public static StoreSnapshot Snapshot(NpgsqlDataSource database)
    {
        using var connection = database.OpenConnection();
        using var transaction = connection.BeginTransaction(System.Data.IsolationLevel.RepeatableRead);
        long index;
        using (var read = new NpgsqlCommand("SELECT commit_index FROM vault_store", connection, transaction))
        {
            index = read.ExecuteScalar() is long stored ? stored : 0;
        }
        var documents = new List<StoredDocument>();
        using (var rows = new NpgsqlCommand("SELECT collection, id, document FROM vault_documents", connection, transaction))
        using (var reader = rows.ExecuteReader())
        {
            while (reader.Read())
            {
                documents.Add(new StoredDocument(reader.GetString(0), reader.GetString(1), reader.GetFieldValue<byte[]>(2)));
            }
        }
        transaction.Commit();
        // The store's order: collections, then ids, as exact (UTF-16 ordinal) strings.
        documents.Sort((x, y) => string.CompareOrdinal(x.Collection, y.Collection) is var c and not 0 ? c : string.CompareOrdinal(x.Id, y.Id));
        return new StoreSnapshot(index, documents);
    }

    /// <summary>The documents one node of several keeps for itself (<c>vault_node_documents</c>).</summary>
    public static List<StoredDocument> NodeDocuments(NpgsqlDataSource database, string node)
    {
        var documents = new List<StoredDocument>();
        using var connection = database.OpenConnection();
        using var rows = new NpgsqlCommand("SELECT collection, id, document FROM vault_node_documents WHERE node = @node", connection);
        rows.Parameters.AddWithValue("node", node);
        using var reader = rows.ExecuteReader();
        while (reader.Read())
        {
            documents.Add(new StoredDocument(reader.GetString(0), reader.GetString(1), reader.GetFieldValue<byte[]>(2)));
        }
        return documents;
    }

    /// <summary>
    /// What changed after commit <paramref name="since"/> (one repeatable-read read): the documents
    /// written and the ids removed since, up to the commit index read with them — or null when
    /// removals that old are no longer kept (<c>removed_horizon</c>), and only a whole
    /// <see cref="Snapshot"/> will do.
    /// </summary>
    public static async Task<StoreChanges?> ChangesSinceAsync(NpgsqlDataSource database, long since, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken);
        long index;
        await using (var read = new NpgsqlCommand("SELECT commit_index, removed_horizon FROM vault_store", connection, transaction))
        await using (var reader = await read.ExecuteReaderAsync(cancellationToken))
        {
            if (!await reader.ReadAsync(cancellationToken))
            {
                return new StoreChanges(0, [], []);
            }
            index = reader.GetInt64(0);
            if (since < reader.GetInt64(1))
            {
                return null;
            }
        }
        if (index <= since)
        {
            return new StoreChanges(index, [], []);
        }
        var removed = new List<(string, string)>();
        await using (var rows = new NpgsqlCommand("SELECT collection, id FROM vault_removed WHERE changed > @since", connection, transaction))
        {
            rows.Parameters.AddWithValue("since", since);
            await using var reader = await rows.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                removed.Add((reader.GetString(0), reader.GetString(1)));
            }
        }
        var written = new List<StoredDocument>();
        await using (var rows = new NpgsqlCommand("SELECT collection, id, document FROM vault_documents WHERE changed > @since", connection, transaction))
        {
            rows.Parameters.AddWithValue("since", since);
            await using var reader = await rows.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                written.Add(new StoredDocument(reader.GetString(0), reader.GetString(1), reader.GetFieldValue<byte[]>(2)));
            }
        }
        await transaction.CommitAsync(cancellationToken);
        return new StoreChanges(index, removed, written);
    }

    /// <summary>Whether the database holds no vault's documents (or not even their table yet).</summary>
    public static async Task<bool> IsEmptyAsync(NpgsqlDataSource database, CancellationToken cancellationToken)
    {
        // Two statements: a query naming a table that does not exist fails when it is planned.
        await using (var exists = database.CreateCommand("SELECT to_regclass('vault_documents') IS NOT NULL"))
        {
            if (!(bool)(await exists.ExecuteScalarAsync(cancellationToken))!)
            {
                return true;
            }
        }
        await using var any = database.CreateCommand("SELECT NOT EXISTS (SELECT 1 FROM vault_documents LIMIT 1)");
        return (bool)(await any.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>
    /// Writes <paramref name="snapshot"/> into a database that holds no vault (migrating its schema
    /// first), in one transaction: all of it or nothing.
    /// </summary>
    /// <exception cref="InvalidOperationException">The database already holds a vault.</exception>
    public static async Task InstallAsync(NpgsqlDataSource database, StoreSnapshot snapshot, CancellationToken cancellationToken)
    {
        await PostgresSchema.MigrateAsync(database, cancellationToken);
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var lockTable = new NpgsqlCommand("LOCK TABLE vault_documents, vault_store IN EXCLUSIVE MODE", connection, transaction))
        {
            await lockTable.ExecuteNonQueryAsync(cancellationToken);
        }
        await using (var any = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM vault_documents LIMIT 1) OR EXISTS (SELECT 1 FROM vault_store)", connection, transaction))
        {
            if ((bool)(await any.ExecuteScalarAsync(cancellationToken))!)
            {
                throw new InvalidOperationException("the database already holds a vault: migrate only into one that holds none");
            }
        }
        await using (var import = await connection.BeginBinaryImportAsync("COPY vault_documents (collection, id, document) FROM STDIN (FORMAT BINARY)", cancellationToken))
        {
            foreach (var document in snapshot.Documents)
            {
                await import.StartRowAsync(cancellationToken);
                await import.WriteAsync(document.Collection, NpgsqlDbType.Text, cancellationToken);
                await import.WriteAsync(document.Id, NpgsqlDbType.Text, cancellationToken);
                await import.WriteAsync(document.Bson, NpgsqlDbType.Bytea, cancellationToken);
            }
            await import.CompleteAsync(cancellationToken);
        }
        await using (var index = new NpgsqlCommand("INSERT INTO vault_store (commit_index) VALUES (@index)", connection, transaction))
        {
            index.Parameters.AddWithValue("index", snapshot.Index);
            await index.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
    }
}

/// <summary>
/// What changed in the shared documents between two commits: removals first, then writes (a
/// document removed and written again is in both; the write is the newer).
/// </summary>
public sealed record StoreChanges(long Index, IReadOnlyList<(string Collection, string Id)> Removed, IReadOnlyList<StoredDocument> Written);
