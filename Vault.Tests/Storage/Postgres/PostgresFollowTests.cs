using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Vault.Server;
using Vault.Server.Storage;
using Vault.Server.Storage.Postgres;
using Vault.Tests.Rotation;

namespace Vault.Tests.Storage.Postgres;

/// <summary>
/// Two nodes' stores on one real PostgreSQL database, in one process: the standby's image follows
/// the active's commits — writes, removals, a removal and a write again — and says which documents
/// changed; it refuses shared writes but keeps its own documents (its audit anchor), apart from the
/// other node's; a read that waits for a commit index sees it; a standby further behind than the
/// removals kept reloads everything; a node whose image is behind cannot commit over newer rows.
/// </summary>
public sealed class PostgresFollowTests(TargetSystems systems) : IClassFixture<TargetSystems>, IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private ScratchDatabase? _database;
    private Leadership? _termA;
    private Leadership? _termB;

    private NpgsqlDataSource Data => _database?.Data ?? throw new InvalidOperationException("not initialised");

    public sealed class Item
    {
        public string Value { get; set; } = "";
    }

    public async Task InitializeAsync() => _database = await ScratchDatabase.CreateAsync(systems.PostgresServer, "vault_follow");

    public async Task DisposeAsync() => await (_database?.DisposeAsync() ?? ValueTask.CompletedTask);

    private PostgresStore Open(string node, Func<Leadership?> term) =>
        new(Data, NullLogger<PostgresStore>.Instance, [typeof(Item)], term, node: node, nodeLocal: [("system", "mine")]);

    private async Task<Leadership> LeadAsync(string node)
    {
        PostgresSchema.Migrate(Data);
        var lease = new LeaderLease(Data, node, $"{node}:8200", TimeSpan.FromMinutes(5));
        return await lease.TryAcquireAsync(default) ?? throw new InvalidOperationException("lease taken");
    }

    private static Task Put(PostgresStore store, string collection, string id, string value) =>
        store.WriteAsync(tx =>
        {
            tx.Put(collection, id, new Item { Value = value });
            return true;
        }, default);

    [Fact]
    public async Task TheStandbysImage_FollowsTheActivesCommits_AndSaysWhatChanged()
    {
        _termA = await LeadAsync("a");
        using var a = Open("a", () => _termA);
        using var b = Open("b", () => _termB);
        var told = new List<(string, string)>();
        b.ChangedElsewhere += changed =>
        {
            lock (told)
            {
                told.AddRange(changed);
            }
        };

        await Put(a, "items", "one", "1");
        await Put(a, "items", "two", "2");
        await Put(a, "items", "gone", "soon");
        await a.WriteAsync(tx =>
        {
            tx.Delete("items", "gone");
            tx.Put("items", "one", new Item { Value = "1b" });
            return true;
        }, default);
        // Removed and written again, in two commits the standby may read at once.
        await a.WriteAsync(tx =>
        {
            tx.Delete("items", "two");
            return true;
        }, default);
        await Put(a, "items", "two", "2b");

        Assert.True(await b.WaitForIndexAsync(a.CommitIndex, Wait, default), $"the standby stayed at {b.CommitIndex}, the active is at {a.CommitIndex}");
        Assert.Equal(a.CommitIndex, b.CommitIndex);
        Assert.Equal([("one", "1b"), ("two", "2b")], b.List<Item>("items", "").Select(p => (p.Key, p.Value.Value)));
        Assert.Null(b.Get<Item>("items", "gone"));
        lock (told)
        {
            Assert.Contains(("items", "gone"), told);
            Assert.Contains(("items", "one"), told);
        }

        // The standby writes nothing shared: a write needs the term.
        var refused = await Assert.ThrowsAsync<FencedException>(() => Put(b, "items", "three", "3"));
        Assert.Contains("not the active one", refused.Message, StringComparison.Ordinal);
        Assert.Null(a.Get<Item>("items", "three"));

        // Its own documents it writes without a term, beside the other node's, each seeing its own;
        // they take no commit index, on either node.
        var before = a.CommitIndex;
        await Put(b, "system", "mine", "b's anchor");
        await Put(a, "system", "mine", "a's anchor");
        Assert.Equal(before, a.CommitIndex);
        Assert.Equal(before, b.CommitIndex);
        Assert.Equal("b's anchor", b.Get<Item>("system", "mine")!.Value);
        Assert.Equal("a's anchor", a.Get<Item>("system", "mine")!.Value);
        await using (var rows = Data.CreateCommand("SELECT node FROM vault_node_documents ORDER BY node"))
        await using (var reader = await rows.ExecuteReaderAsync())
        {
            var nodes = new List<string>();
            while (await reader.ReadAsync())
            {
                nodes.Add(reader.GetString(0));
            }
            Assert.Equal(["a", "b"], nodes);
        }
        await using (var shared = Data.CreateCommand("SELECT count(*) FROM vault_documents WHERE collection = 'system'"))
        {
            Assert.Equal(0L, await shared.ExecuteScalarAsync());
        }
        // Reopened, each node has its own back.
        b.Dispose();
        using var again = Open("b", () => _termB);
        Assert.Equal("b's anchor", again.Get<Item>("system", "mine")!.Value);
        Assert.Equal("2b", again.Get<Item>("items", "two")!.Value);
    }

    [Fact]
    public async Task ANodeThatTakesOver_CatchesUpFirst_AndTheDeposedOneCannotCommitOverIt()
    {
        _termA = await LeadAsync("a");
        using var a = Open("a", () => _termA);
        using var b = Open("b", () => _termB);
        await Put(a, "items", "x", "from a");

        // a's term ends (released), b takes the next and catches up before writing.
        await new LeaderLease(Data, "a", "a:8200", TimeSpan.FromMinutes(5)).ReleaseAsync(_termA, default);
        var term = await LeadAsync("b");
        await b.CatchUpAsync(default);
        _termB = term;
        Assert.Equal("from a", b.Get<Item>("items", "x")!.Value);
        await Put(b, "items", "x", "from b");

        // a still believes it leads: its write is refused, and its image is not the database's.
        await Assert.ThrowsAsync<FencedException>(() => Put(a, "items", "x", "late from a"));
        _termA = null;
        Assert.True(await a.WaitForIndexAsync(b.CommitIndex, Wait, default));
        Assert.Equal("from b", a.Get<Item>("items", "x")!.Value);
        await using var row = Data.CreateCommand("SELECT document FROM vault_documents WHERE collection = 'items' AND id = 'x'");
        var bytes = (byte[])(await row.ExecuteScalarAsync())!;
        Assert.True(bytes.AsSpan().IndexOf("from b"u8) >= 0);
    }

    [Fact]
    public async Task AStandbyBehindTheRemovalsKept_ReloadsEverything()
    {
        _termA = await LeadAsync("a");
        using var a = Open("a", () => _termA);
        await Put(a, "items", "stays", "1");
        await Put(a, "items", "goes", "2");
        using var b = Open("b", () => _termB);
        Assert.Equal("2", b.Get<Item>("items", "goes")!.Value);
        // b stands still while the active removes, and prunes removals past where b stands.
        b.Following = false;
        await a.WriteAsync(tx =>
        {
            tx.Delete("items", "goes");
            return true;
        }, default);
        await using (var prune = Data.CreateCommand($"DELETE FROM vault_removed; UPDATE vault_store SET removed_horizon = {a.CommitIndex}"))
        {
            await prune.ExecuteNonQueryAsync();
        }
        await Put(a, "items", "new", "3");
        Assert.Equal("2", b.Get<Item>("items", "goes")!.Value);
        b.Following = true;
        Assert.True(await b.WaitForIndexAsync(a.CommitIndex, Wait, default));
        Assert.Null(b.Get<Item>("items", "goes"));
        Assert.Equal(["new", "stays"], b.List<Item>("items", "").Select(p => p.Key));
    }

    [Fact]
    public async Task AReadThatWaits_ForAnIndexTheDatabaseNeverReached_IsNotHeld_ButOnAStandbyStandingStillItIs()
    {
        _termA = await LeadAsync("a");
        using var a = Open("a", () => _termA);
        await Put(a, "items", "x", "1");
        using var b = Open("b", () => _termB);
        // A standby reads the database: that commit does not exist (a client of another history).
        Assert.True(await b.WaitForIndexAsync(a.CommitIndex + 5, Wait, default));
        // The active node is the only writer: nothing newer exists, it does not wait either.
        Assert.True(await a.WaitForIndexAsync(a.CommitIndex + 5, TimeSpan.FromMilliseconds(500), default));
        // A standby standing still (its follower stopped) cannot know: it gives up too.
        b.Following = false;
        await Put(a, "items", "x", "2");
        Assert.False(await b.WaitForIndexAsync(a.CommitIndex, TimeSpan.FromMilliseconds(1500), default));
        b.Following = true;
        Assert.True(await b.WaitForIndexAsync(a.CommitIndex, Wait, default));
        Assert.Equal("2", b.Get<Item>("items", "x")!.Value);
    }

    [Fact]
    public async Task ASharedRowUnderANodesOwnKey_LeftByAnOnlyNode_IsNoNodesOwn_OnOpeningOrOnAWholeReload()
    {
        // An only node wrote its anchor as a shared row, before the database had several nodes.
        using (var only = new PostgresStore(Data, NullLogger<PostgresStore>.Instance, [typeof(Item)]))
        {
            await Put(only, "system", "mine", "the only node's anchor");
        }
        NpgsqlConnection.ClearAllPools();
        _termA = await LeadAsync("a");
        using var a = Open("a", () => _termA);
        using var b = Open("b", () => _termB);
        Assert.Null(a.Get<Item>("system", "mine"));
        Assert.Null(b.Get<Item>("system", "mine"));
        await Put(b, "system", "mine", "b's anchor");

        // b reloads everything (behind the removals kept): its own anchor stays its own.
        b.Following = false;
        await Put(a, "items", "x", "1");
        await using (var prune = Data.CreateCommand($"UPDATE vault_store SET removed_horizon = {a.CommitIndex}"))
        {
            await prune.ExecuteNonQueryAsync();
        }
        b.Following = true;
        Assert.True(await b.WaitForIndexAsync(a.CommitIndex, Wait, default));
        Assert.Equal("1", b.Get<Item>("items", "x")!.Value);
        Assert.Equal("b's anchor", b.Get<Item>("system", "mine")!.Value);
    }

    [Fact]
    public async Task AnActiveWhoseImageIsBehind_CommitsNothingOverNewerRows_AndCatchesUp()
    {
        _termA = await LeadAsync("a");
        using var a = Open("a", () => _termA);
        using var b = Open("b", () => _termB);
        b.Following = false;
        await Put(a, "items", "x", "from a");
        // b takes over without catching up (what CatchUpAsync exists to prevent).
        await new LeaderLease(Data, "a", "a:8200", TimeSpan.FromMinutes(5)).ReleaseAsync(_termA, default);
        _termA = null;
        _termB = await LeadAsync("b");
        Assert.Null(b.Get<Item>("items", "x"));

        var refused = await Assert.ThrowsAsync<UnavailableException>(() => Put(b, "items", "x", "from a stale b"));
        Assert.Contains("behind", refused.Message, StringComparison.Ordinal);
        await using (var row = Data.CreateCommand("SELECT document FROM vault_documents WHERE collection = 'items' AND id = 'x'"))
        {
            Assert.True(((byte[])(await row.ExecuteScalarAsync())!).AsSpan().IndexOf("from a"u8) >= 0);
        }
        // It caught up (active or not), and its next write goes through.
        b.Following = true;
        await Vault.Tests.Client.ClientKit.WaitUntilAsync(() => Task.FromResult(b.Get<Item>("items", "x")?.Value == "from a"), Wait, "the stale active to catch up");
        await Put(b, "items", "x", "from b");
        Assert.Equal("from b", b.Get<Item>("items", "x")!.Value);
    }
}
