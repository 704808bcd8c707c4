using Npgsql;
using Vault.Server;
using Vault.Server.Storage.Postgres;
using Vault.Tests.Rotation;

namespace Vault.Tests.Storage.Postgres;

/// <summary>
/// Leadership of several nodes over one real PostgreSQL database: one active at a time, a standby
/// taking over with the next epoch once the active's term lapses (on the database's clock), and
/// fencing — a deposed node's writes are refused, including one it was in the middle of when it
/// was paused, so none lands after its successor's first write (checked in the table).
/// </summary>
public sealed class LeaderLeaseTests(TargetSystems systems) : IClassFixture<TargetSystems>, IAsyncLifetime
{
    // The term a test waits out: short, but long enough that a loaded machine still renews and
    // writes within it (1 s was not: a full run's fenced write came after its own term's end).
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(3);
    // The successor's: it must still lead when the test writes with it and checks the table.
    private static readonly TimeSpan SuccessorTtl = TimeSpan.FromSeconds(60);
    private readonly string _database = $"vault_ha_{Guid.NewGuid():N}";
    private NpgsqlDataSource? _data;
    private NpgsqlDataSource? _nodeA;

    private NpgsqlDataSource Data => _data ?? throw new InvalidOperationException("not initialised");

    public async Task InitializeAsync()
    {
        var server = systems.PostgresServer;
        await server.ExecuteAsync($"CREATE DATABASE {_database}");
        var connection = server.ConnectionString(server.SuperUser, server.SuperPassword, _database);
        _data = NpgsqlDataSource.Create(connection);
        // Node A's sessions: paused inside a transaction, it loses the session (and the transaction)
        // after this — longer than a loaded machine's pause between a write's statements, shorter
        // than A's term.
        _nodeA = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(connection) { Options = LeaderLease.SessionOptions(TimeSpan.FromSeconds(1.5)) }.ConnectionString);
        await PostgresSchema.MigrateAsync(Data, CancellationToken.None);
        await Execute("CREATE TABLE fenced_writes (seq bigserial PRIMARY KEY, node text NOT NULL)");
    }

    public async Task DisposeAsync()
    {
        await Data.DisposeAsync();
        await _nodeA!.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await systems.PostgresServer.ExecuteAsync($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)");
    }

    [Fact]
    public async Task OneNodeLeads_OthersWait_AndOneTakesOverWithTheNextEpochOnceTheTermLapses()
    {
        var a = new LeaderLease(Data, "node-a", "10.0.0.1:8200", Ttl);
        var b = new LeaderLease(Data, "node-b", "10.0.0.2:8200", SuccessorTtl);
        var c = new LeaderLease(Data, "node-c", "10.0.0.3:8200", SuccessorTtl);

        var first = await a.TryAcquireAsync(default);
        Assert.NotNull(first);
        Assert.Equal(1, first.Epoch);
        Assert.Null(await b.TryAcquireAsync(default));
        first = await a.RenewAsync(first, default);
        Assert.NotNull(first);
        var (current, live) = (await a.CurrentAsync(default))!.Value;
        Assert.True(live);
        Assert.Equal(("node-a", "10.0.0.1:8200", 1L), (current.Holder, current.Address, current.Epoch));

        // node-a stops renewing (it died): after its term, exactly one of the two standbys takes over.
        await WaitUntilLapsedAsync(a);
        var takeovers = await Task.WhenAll(b.TryAcquireAsync(default), c.TryAcquireAsync(default));
        var second = Assert.Single(takeovers, t => t is not null)!;
        Assert.Equal(2, second.Epoch);
        Assert.Null(await a.RenewAsync(first, default));
        Assert.Null(await a.TryAcquireAsync(default));

        // A clean step-down hands over at once, with the next epoch.
        var successor = second.Holder == "node-b" ? b : c;
        await successor.ReleaseAsync(second, default);
        var third = await a.TryAcquireAsync(default);
        Assert.NotNull(third);
        Assert.Equal(3, third.Epoch);
    }

    [Fact]
    public async Task ADeposedNodesWrites_AreRefused_SoNoneLandsAfterItsSuccessorsFirstWrite()
    {
        var a = new LeaderLease(_nodeA!, "node-a", "a:8200", Ttl);
        var b = new LeaderLease(Data, "node-b", "b:8200", SuccessorTtl);
        var termA = (await a.TryAcquireAsync(default))!;
        await WriteAsync(termA, "a", _nodeA!);

        // node-a is paused in the middle of a write: fenced, its row inserted, not committed.
        var paused = await _nodeA!.OpenConnectionAsync();
        var pausedWrite = await paused.BeginTransactionAsync();
        LeaderLease.Fence(paused, pausedWrite, termA);
        await using (var insert = new NpgsqlCommand("INSERT INTO fenced_writes (node) VALUES ('a-paused')", paused, pausedWrite))
        {
            await insert.ExecuteNonQueryAsync();
        }

        // Its term lapses; node-b takes over as soon as the database has ended the paused session.
        await WaitUntilLapsedAsync(a);
        Leadership? termB = null;
        for (var deadline = DateTime.UtcNow.AddSeconds(30); termB is null; await Task.Delay(100))
        {
            Assert.True(DateTime.UtcNow < deadline, "node-b could not take over in 30 s");
            termB = await b.TryAcquireAsync(default);
        }
        Assert.Equal(termA.Epoch + 1, termB.Epoch);
        await WriteAsync(termB, "b");

        // node-a resumes: the write it was in the middle of is gone, its next is refused, and it steps down.
        await Assert.ThrowsAnyAsync<Exception>(() => pausedWrite.CommitAsync());
        await paused.DisposeAsync();
        var refused = await Assert.ThrowsAsync<FencedException>(() => WriteAsync(termA, "a-late", _nodeA!));
        Assert.Contains($"epoch {termA.Epoch}", refused.Message, StringComparison.Ordinal);
        Assert.Null(await a.RenewAsync(termA, default));
        await WriteAsync(termB, "b");

        var rows = await RowsAsync();
        Assert.Equal(["a", "b", "b"], rows.Select(r => r.Node));
        Assert.DoesNotContain(rows, r => r.Node.StartsWith("a-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheSchema_IsMigratedOnceEvenByNodesStartingTogether_AndANewerOneIsRefused()
    {
        // InitializeAsync migrated it: again, from several nodes at once, is a no-op.
        var again = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => PostgresSchema.MigrateAsync(Data, default)));
        Assert.All(again, version => Assert.Equal(PostgresSchema.Latest, version));
        await using (var count = Data.CreateCommand("SELECT count(*) FROM vault_schema"))
        {
            Assert.Equal((long)PostgresSchema.Latest, await count.ExecuteScalarAsync());
        }

        await Execute($"INSERT INTO vault_schema (version) VALUES ({PostgresSchema.Latest + 1})");
        var newer = await Assert.ThrowsAsync<InvalidOperationException>(() => PostgresSchema.MigrateAsync(Data, default));
        Assert.Contains($"version {PostgresSchema.Latest + 1}, newer than this server knows", newer.Message, StringComparison.Ordinal);
    }

    /// <summary>A write of the active node: fenced by its term, in one transaction.</summary>
    private async Task WriteAsync(Leadership term, string node, NpgsqlDataSource? from = null)
    {
        await using var connection = await (from ?? Data).OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        LeaderLease.Fence(connection, transaction, term);
        await using var insert = new NpgsqlCommand("INSERT INTO fenced_writes (node) VALUES (@node)", connection, transaction);
        insert.Parameters.AddWithValue("node", node);
        await insert.ExecuteNonQueryAsync();
        await transaction.CommitAsync();
    }

    private async Task<List<(long Seq, string Node)>> RowsAsync()
    {
        var rows = new List<(long, string)>();
        await using var command = Data.CreateCommand("SELECT seq, node FROM fenced_writes ORDER BY seq");
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetInt64(0), reader.GetString(1)));
        }
        return rows;
    }

    /// <summary>Until the database's clock is past the current term (a real wait: the expiry is the database's).</summary>
    private static async Task WaitUntilLapsedAsync(LeaderLease any)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(30); (await any.CurrentAsync(default))?.Live == true; await Task.Delay(100))
        {
            Assert.True(DateTime.UtcNow < deadline, "the term did not lapse in 30 s");
        }
    }

    private async Task Execute(string sql)
    {
        await using var command = Data.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }
}
