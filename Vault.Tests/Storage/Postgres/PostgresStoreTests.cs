using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Vault.Server;
using Vault.Server.Storage;
using Vault.Server.Storage.Postgres;
using Vault.Tests.Rotation;

namespace Vault.Tests.Storage.Postgres;

/// <summary>
/// The store on a real PostgreSQL database: units of work apply whole or not at all and are grouped
/// into transactions; names are exact strings; what was committed is there after a reopen (which
/// reads it all back) and in the table; a snapshot is the committed state; a node whose term is over
/// cannot write; the rows hold only what the store was given.
/// </summary>
public sealed class PostgresStoreTests(TargetSystems systems) : IClassFixture<TargetSystems>, IAsyncLifetime
{
    private ScratchDatabase? _database;

    private NpgsqlDataSource Data => _database?.Data ?? throw new InvalidOperationException("not initialised");

    public sealed class Item
    {
        public string Value { get; set; } = "";
    }

    public async Task InitializeAsync() => _database = await ScratchDatabase.CreateAsync(systems.PostgresServer, "vault_store");

    public async Task DisposeAsync() => await (_database?.DisposeAsync() ?? ValueTask.CompletedTask);

    private PostgresStore Open(Func<Leadership?>? term = null) => new(Data, NullLogger<PostgresStore>.Instance, [typeof(Item)], term);

    [Fact]
    public async Task Writes_AreGroupedIntoTransactions_AndAllThereAfterAReopen()
    {
        using (var store = Open())
        {
            var writes = Enumerable.Range(0, 300).Select(i => store.WriteAsync(tx =>
            {
                tx.Put("items", $"i{i:D4}", new Item { Value = $"v{i}" });
                return i;
            }, default));
            await Task.WhenAll(writes);
            Assert.True(store.Commits < 300, $"{store.Commits} transactions for 300 concurrent writes: no grouping");
            Assert.Equal(store.Commits, store.CommitIndex);
        }
        using var reopened = Open();
        Assert.Equal(Enumerable.Range(0, 300).Select(i => $"v{i}"), reopened.List<Item>("items", "i").Select(p => p.Value.Value));
        Assert.True(reopened.CommitIndex > 0);
        await using var count = Data.CreateCommand("SELECT count(*) FROM vault_documents WHERE collection = 'items'");
        Assert.Equal(300L, await count.ExecuteScalarAsync());
    }

    [Fact]
    public async Task AScan_InPages_SeesWhatAListSees_AndChangesMadeWhileItRuns_NeverTwice()
    {
        using var store = Open();
        await store.WriteAsync(tx =>
        {
            for (var i = 0; i < 25; i++)
            {
                tx.Put("items", $"i{i:D3}", new Item { Value = $"v{i}" });
            }
            return 0;
        }, default);

        Assert.Equal(store.List<Item>("items", "").Select(p => p.Key), store.Scan<Item>("items", pageSize: 4).Select(p => p.Key));
        var seen = new List<string>();
        foreach (var (id, _) in store.Scan<Item>("items", pageSize: 4))
        {
            seen.Add(id);
            if (id == "i005")
            {
                // Behind the scan, and ahead of it: the one ahead is seen, none twice.
                await store.WriteAsync(tx => { tx.Put("items", "i000a", new Item()); tx.Put("items", "i020a", new Item()); tx.Delete("items", "i021"); return 0; }, default);
            }
        }
        Assert.Equal(seen.Distinct().Count(), seen.Count);
        Assert.Contains("i020a", seen);
        Assert.DoesNotContain("i021", seen);
        Assert.Empty(store.Scan<Item>("nothing"));
    }

    [Fact]
    public async Task AUnitThatThrows_AppliesNothing_ItsGroupStillCommits_AndUnitsSeeTheirGroupsWrites()
    {
        using var store = Open();
        await store.WriteAsync(tx =>
        {
            tx.Put("items", "base", new Item { Value = "0" });
            return true;
        }, default);
        var failing = store.WriteAsync<bool>(tx =>
        {
            tx.Put("items", "half", new Item { Value = "x" });
            tx.Delete("items", "base");
            throw new InvalidDataException("refused");
        }, default);
        var reading = store.WriteAsync(tx =>
        {
            var seen = tx.Get<Item>("items", "base")!.Value;
            tx.Put("items", "base", new Item { Value = seen + "1" });
            tx.Put("items", "listed", new Item { Value = tx.List<Item>("items", "").Count.ToString() });
            return seen;
        }, default);

        await Assert.ThrowsAsync<InvalidDataException>(() => failing);
        Assert.Equal("0", await reading);
        Assert.Null(store.Get<Item>("items", "half"));
        Assert.Equal("01", store.Get<Item>("items", "base")!.Value);
        store.Dispose();
        using var reopened = Open();
        Assert.Null(reopened.Get<Item>("items", "half"));
        Assert.Equal("01", reopened.Get<Item>("items", "base")!.Value);
    }

    [Fact]
    public async Task NamesAreExactStrings_AndPrefixesAreNotPatterns()
    {
        using (var store = Open())
        {
            foreach (var id in new[] { "kv/ABC", "kv/abc", "kv/a_c", "kv/a%c", "kv/abd", "kv/", "kw/x", "kv/ä", "kv/a\uffff" })
            {
                await store.WriteAsync(tx =>
                {
                    tx.Put("items", id, new Item { Value = id });
                    return true;
                }, default);
            }
            await store.WriteAsync(tx =>
            {
                tx.Delete("items", "kv/abd");
                return true;
            }, default);
        }
        using var reopened = Open();
        Assert.Equal("kv/ABC", reopened.Get<Item>("items", "kv/ABC")!.Value);
        Assert.Equal("kv/abc", reopened.Get<Item>("items", "kv/abc")!.Value);
        Assert.Equal(["kv/a%c", "kv/a_c", "kv/abc", "kv/a\uffff"], reopened.List<Item>("items", "kv/a").Select(p => p.Key));
        Assert.Equal(["kv/a_c"], reopened.List<Item>("items", "kv/a_").Select(p => p.Key));
        Assert.Empty(reopened.List<Item>("items", "kv/abd"));
        Assert.Equal(8, reopened.List<Item>("items", "").Count);
    }

    [Fact]
    public async Task ASnapshot_IsTheCommittedState_AndTheDerivedValueFollowsTheDocument()
    {
        using var store = Open();
        await store.WriteAsync(tx =>
        {
            tx.Put("items", "a", new Item { Value = "1" });
            tx.Put("other", "b", new Item { Value = "2" });
            return true;
        }, default);
        var snapshot = store.Snapshot();
        Assert.Equal(store.CommitIndex, snapshot.Index);
        Assert.Equal([("items", "a"), ("other", "b")], snapshot.Documents.Select(d => (d.Collection, d.Id)));
        Assert.Equal("2", snapshot.Documents[1].As<Item>().Value);

        Assert.Equal("1!", store.GetDerived<Item, string>("items", "a", i => i.Value + "!"));
        await store.WriteAsync(tx =>
        {
            tx.Put("items", "a", new Item { Value = "3" });
            return true;
        }, default);
        Assert.Equal("3!", store.GetDerived<Item, string>("items", "a", i => i.Value + "!"));
    }

    [Fact]
    public async Task ANodeWhoseTermIsOver_CannotWrite_AndANodeThatLeads_Can()
    {
        var lease = new LeaderLease(Data, "node-a", "a:8200", TimeSpan.FromMinutes(1));
        Leadership? current = null;
        using var store = Open(term: () => current);
        // Not the active node (no term): refused before anything is sent.
        var refused = await Assert.ThrowsAsync<FencedException>(() => store.WriteAsync(tx =>
        {
            tx.Put("items", "x", new Item());
            return true;
        }, default));
        Assert.Contains("not the active one", refused.Message, StringComparison.Ordinal);

        var term = (await lease.TryAcquireAsync(default))!;
        current = term;
        await store.WriteAsync(tx =>
        {
            tx.Put("items", "y", new Item { Value = "led" });
            return true;
        }, default);
        // Its term moved on (another node took over): the write is refused by the fence, in the database.
        current = term with { Epoch = term.Epoch + 100 };
        var fenced = await Assert.ThrowsAsync<FencedException>(() => store.WriteAsync(tx =>
        {
            tx.Put("items", "z", new Item());
            return true;
        }, default));
        Assert.Contains($"epoch {term.Epoch + 100}", fenced.Message, StringComparison.Ordinal);
        Assert.Null(store.Get<Item>("items", "z"));
        Assert.Null(store.Get<Item>("items", "x"));
        store.Dispose();
        using var reopened = Open();
        Assert.Equal("led", reopened.Get<Item>("items", "y")!.Value);
        Assert.Null(reopened.Get<Item>("items", "z"));
    }

    [Fact]
    public async Task ASecondStoreOnTheDatabase_IsRefused_UntilTheFirstCloses()
    {
        var first = Open();
        var refused = Assert.Throws<ValidationException>(() => Open());
        Assert.Contains("another vault node is using this database", refused.Message, StringComparison.Ordinal);
        await first.WriteAsync(tx =>
        {
            tx.Put("items", "a", new Item { Value = "1" });
            return true;
        }, default);
        first.Dispose();
        using var second = Open();
        Assert.Equal("1", second.Get<Item>("items", "a")!.Value);
    }

    [Fact]
    public async Task ACommitWhoseAnswerIsLost_IsSettledByAskingTheDatabase_AndTheStoreGoesOn()
    {
        using var store = Open();
        // The commit happens, then the connection fails before the answer: acknowledged, and there.
        store.CommitForTests = transaction =>
        {
            transaction.Commit();
            throw new NpgsqlException("connection lost after the commit was sent");
        };
        await store.WriteAsync(tx =>
        {
            tx.Put("items", "landed", new Item { Value = "1" });
            return true;
        }, default);
        // The connection fails before the commit: refused, and not there.
        store.CommitForTests = transaction =>
        {
            transaction.Connection!.Close();
            throw new NpgsqlException("connection lost before the commit");
        };
        var lost = await Assert.ThrowsAsync<UnavailableException>(() => store.WriteAsync(tx =>
        {
            tx.Put("items", "never", new Item { Value = "2" });
            return true;
        }, default));
        Assert.Contains("which did not happen", lost.Message, StringComparison.Ordinal);
        store.CommitForTests = null;
        await store.WriteAsync(tx =>
        {
            tx.Put("items", "after", new Item { Value = "3" });
            return true;
        }, default);

        Assert.Null(store.Failure);
        Assert.Equal("1", store.Get<Item>("items", "landed")!.Value);
        Assert.Null(store.Get<Item>("items", "never"));
        store.Dispose();
        using var reopened = Open();
        Assert.Equal(["after", "landed"], reopened.List<Item>("items", "").Select(p => p.Key));
    }

    [Fact]
    public async Task AGroupTheDatabaseRefuses_FailsAlone_AndTheStoreGoesOn()
    {
        using var store = Open();
        // Take the table away for a moment: the group fails UNAVAILABLE, nothing of it is in memory.
        await using (var rename = Data.CreateCommand("ALTER TABLE vault_documents RENAME TO vault_documents_away"))
        {
            await rename.ExecuteNonQueryAsync();
        }
        var error = await Assert.ThrowsAsync<UnavailableException>(() => store.WriteAsync(tx =>
        {
            tx.Put("items", "lost", new Item());
            return true;
        }, default));
        Assert.Contains("storage unavailable", error.Message, StringComparison.Ordinal);
        Assert.Null(store.Get<Item>("items", "lost"));
        await using (var back = Data.CreateCommand("ALTER TABLE vault_documents_away RENAME TO vault_documents"))
        {
            await back.ExecuteNonQueryAsync();
        }
        await store.WriteAsync(tx =>
        {
            tx.Put("items", "kept", new Item { Value = "ok" });
            return true;
        }, default);
        Assert.Null(store.Failure);
        store.Dispose();
        using var reopened = Open();
        Assert.Equal("ok", reopened.Get<Item>("items", "kept")!.Value);
        Assert.Null(reopened.Get<Item>("items", "lost"));
    }
}

/// <summary>
/// A PostgreSQL server of its own restarted under write load: the store rides through — writes in
/// the outage fail UNAVAILABLE, a commit cut off midway is settled by asking the database, nothing
/// acknowledged is lost, writes resume, and the store never stops taking them.
/// </summary>
public sealed class PostgresRestartTests
{
    [Fact]
    public async Task ARestartUnderLoad_LosesNothingAcknowledged_AndWritesResume()
    {
        await using var pg = await Vault.Testing.Servers.PostgresServer.StartAsync();
        await using var data = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(pg.SuperConnectionString) { Pooling = true, Timeout = 5 }.ConnectionString);
        var acknowledged = new System.Collections.Concurrent.ConcurrentBag<string>();
        var refused = new System.Collections.Concurrent.ConcurrentBag<string>();
        using (var store = new PostgresStore(data, NullLogger<PostgresStore>.Instance, [typeof(PostgresStoreTests.Item)]))
        {
            using var stop = new CancellationTokenSource();
            var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
            {
                for (var i = 0; !stop.IsCancellationRequested; i++)
                {
                    var id = $"w{w}/{i:D6}";
                    try
                    {
                        await store.WriteAsync(tx =>
                        {
                            tx.Put("items", id, new PostgresStoreTests.Item { Value = id });
                            return true;
                        }, default);
                        acknowledged.Add(id);
                    }
                    catch (UnavailableException)
                    {
                        refused.Add(id);
                        await Task.Delay(20);
                    }
                }
            })).ToArray();
            await WaitForAsync(() => acknowledged.Count >= 200, writers);
            await pg.RestartAsync();
            var afterRestart = acknowledged.Count;
            await WaitForAsync(() => acknowledged.Count >= afterRestart + 200, writers);
            await stop.CancelAsync();
            await Task.WhenAll(writers);
            Assert.Null(store.Failure);
        }
        using var reopened = new PostgresStore(data, NullLogger<PostgresStore>.Instance, [typeof(PostgresStoreTests.Item)]);
        var stored = reopened.List<PostgresStoreTests.Item>("items", "").Select(p => p.Key).ToHashSet();
        var missing = acknowledged.Where(id => !stored.Contains(id)).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} acknowledged writes are gone, e.g. {string.Join(", ", missing.Take(5))}");
        Assert.True(acknowledged.Count >= 400, $"{acknowledged.Count} acknowledged");
        // And a write answered UNAVAILABLE never lands later.
        var landed = refused.Where(stored.Contains).ToList();
        Assert.True(landed.Count == 0, $"{landed.Count} writes refused as UNAVAILABLE are in the database, e.g. {string.Join(", ", landed.Take(5))}");
    }

    private static async Task WaitForAsync(Func<bool> done, Task[] writers)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (!done())
        {
            if (writers.FirstOrDefault(t => t.IsFaulted) is { } failed)
            {
                await failed;
            }
            Assert.True(DateTime.UtcNow < deadline, "the writers did not get far enough in 90 s");
            await Task.Delay(20);
        }
    }
}
