using LiteDB;
using Microsoft.Extensions.Logging.Abstractions;
using Vault.Server.Storage;

namespace Vault.Tests.Storage;

/// <summary>
/// The store acknowledges a write once its group is fsync'd in the write-ahead log, and moves it
/// into the data file later. These tests take the data directory as a crash would leave it — a
/// copy made while the store runs, with acknowledged writes still only in the log — and open it.
/// </summary>
public sealed class WriteAheadLogTests
{
    private sealed class Item
    {
        public int Value { get; set; }

        public string Text { get; set; } = "";
    }

    [Fact]
    public async Task AcknowledgedWrites_StillOnlyInTheLog_AreThereAfterACrash()
    {
        var dir = Directory.CreateTempSubdirectory("vault-wal-").FullName;
        var crashed = Directory.CreateTempSubdirectory("vault-wal-crashed-").FullName;
        using (var store = HoldingChangesInTheLog(dir))
        {
            await WriteItemsAsync(store, 200);
            await store.WriteAsync(tx =>
            {
                tx.Delete("items", "i0007");
                tx.Put("items", "i0008", new Item { Value = 808 });
                return true;
            }, CancellationToken.None);
            Assert.Equal(0, store.Statistics.Applies);
            CopyFiles(dir, crashed);
        }
        var segments = Directory.GetFiles(crashed, "wal-*.log");
        Assert.NotEmpty(segments);
        using var reopened = new LiteDbStore(crashed, NullLogger<LiteDbStore>.Instance, [typeof(Item)], ["items"]);
        var items = reopened.List<Item>("items", "i");
        Assert.Equal(199, items.Count);
        Assert.Null(reopened.Get<Item>("items", "i0007"));
        Assert.Equal(808, reopened.Get<Item>("items", "i0008")!.Value);
        Assert.Equal(199, items[^1].Value.Value);
        // Replayed into the data file and fsync'd, those segments are gone.
        Assert.All(segments, s => Assert.False(File.Exists(s), $"{s} was replayed but not deleted"));
    }

    [Fact]
    public async Task ATornLastRecord_IsIgnored_AndEveryAcknowledgedWriteBeforeItSurvives()
    {
        var dir = Directory.CreateTempSubdirectory("vault-wal-").FullName;
        var crashed = Directory.CreateTempSubdirectory("vault-wal-crashed-").FullName;
        using (var store = HoldingChangesInTheLog(dir))
        {
            await WriteItemsAsync(store, 50);
            CopyFiles(dir, crashed);
        }
        // A crash in the middle of appending the next group: a length, part of a digest, no payload.
        var segment = Directory.GetFiles(crashed, "wal-*.log").Order(StringComparer.Ordinal).Last();
        using (var stream = new FileStream(segment, FileMode.Append))
        {
            stream.Write([0x40, 0x00, 0x00, 0x00, 0xDE, 0xAD, 0xBE, 0xEF]);
        }
        using var reopened = new LiteDbStore(crashed, NullLogger<LiteDbStore>.Instance, [typeof(Item)], ["items"]);
        Assert.Equal(Enumerable.Range(0, 50), reopened.List<Item>("items", "i").Select(p => p.Value.Value));
        await reopened.WriteAsync(tx =>
        {
            tx.Put("items", "after", new Item { Value = 1 });
            return true;
        }, CancellationToken.None);
        Assert.Equal(1, reopened.Get<Item>("items", "after")!.Value);
    }

    [Fact]
    public async Task ADamagedRecordBeforeTheEndOfTheLog_RefusesToStart_RatherThanDropTheWritesAfterIt()
    {
        var dir = Directory.CreateTempSubdirectory("vault-wal-").FullName;
        var crashed = Directory.CreateTempSubdirectory("vault-wal-crashed-").FullName;
        using (var store = HoldingChangesInTheLog(dir))
        {
            await WriteItemsAsync(store, 20);
            CopyFiles(dir, crashed);
        }
        // A later segment exists, so the damaged one is not the log's tail: bit rot, not a torn append.
        var first = Directory.GetFiles(crashed, "wal-*.log").Order(StringComparer.Ordinal).Last();
        File.Copy(first, Path.Combine(crashed, "wal-0000000099.log"));
        var bytes = File.ReadAllBytes(first);
        bytes[40] ^= 0xFF;
        File.WriteAllBytes(first, bytes);

        var ex = Assert.Throws<IOException>(() => new LiteDbStore(crashed, NullLogger<LiteDbStore>.Instance, [typeof(Item)], ["items"]));
        Assert.Contains("damaged", ex.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(first), "the damaged segment was deleted");
        // Whatever the failed open made is released now: a LiteDB transaction it left behind would
        // be finalised after its engine and take the whole process down (as it once did).
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var db = new LiteDatabase(new ConnectionString { Filename = Path.Combine(crashed, "vault.db"), Connection = ConnectionType.Direct });
        Assert.Equal(0, db.GetCollection("items").Count());
    }

    [Fact]
    public async Task ACleanShutdown_LeavesEverythingInTheDataFile_AndNoLog()
    {
        var dir = Directory.CreateTempSubdirectory("vault-wal-").FullName;
        using (var store = HoldingChangesInTheLog(dir))
        {
            await WriteItemsAsync(store, 30);
        }
        Assert.Empty(Directory.GetFiles(dir, "wal-*.log"));
        using var db = new LiteDatabase(new ConnectionString { Filename = Path.Combine(dir, "vault.db"), Connection = ConnectionType.Direct });
        Assert.Equal(30, db.GetCollection("items").Count());
    }

    [Fact]
    public async Task ReadsAndLists_SeeWritesBeforeAndAfterTheyReachTheDataFile()
    {
        var dir = Directory.CreateTempSubdirectory("vault-wal-").FullName;
        using var store = new LiteDbStore(dir, NullLogger<LiteDbStore>.Instance, [typeof(Item)], ["items"], LiteDbStore.DefaultCacheBytes, TimeSpan.FromMilliseconds(20));
        for (var round = 0; round < 20; round++)
        {
            await store.WriteAsync(tx =>
            {
                tx.Put("items", "same", new Item { Value = round });
                tx.Put("items", $"r{round:D2}", new Item { Value = round });
                if (round > 0)
                {
                    tx.Delete("items", $"r{round - 1:D2}");
                }
                return true;
            }, CancellationToken.None);
            Assert.Equal(round, store.Get<Item>("items", "same")!.Value);
            Assert.Equal([$"r{round:D2}"], store.List<Item>("items", "r").Select(p => p.Key));
            await Task.Delay(round % 3 == 0 ? 30 : 0);
        }
        Assert.True(store.Statistics.Applies > 0, "the applier never moved changes into the data file");
        Assert.Equal(19, store.Get<Item>("items", "same")!.Value);
    }

    [Fact]
    public async Task AWriteMostlyCollection_IsReadFromTheDataFile_NotKeptInTheReadCache()
    {
        const int Each = 100;
        var dir = Directory.CreateTempSubdirectory("vault-wal-").FullName;
        using var store = new LiteDbStore(dir, NullLogger<LiteDbStore>.Instance, [typeof(Item)], ["items", "uses"], LiteDbStore.DefaultCacheBytes, TimeSpan.FromMilliseconds(20), uncached: ["uses"]);
        for (var round = 1; round <= 2; round++)
        {
            await store.WriteAsync(tx =>
            {
                for (var i = 0; i < Each; i++)
                {
                    tx.Put("items", $"i{i:D3}", new Item { Value = (round * 1000) + i });
                    tx.Put("uses", $"u{i:D3}", new Item { Value = (round * 1000) + i });
                }
                return true;
            }, CancellationToken.None);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (store.AppliedChanges < round * 2 * Each)
            {
                Assert.True(DateTime.UtcNow < deadline, "the applier never moved the changes into the data file");
                await Task.Delay(10);
            }
            for (var i = 0; i < Each; i++)
            {
                // Read twice: a second read would be a cache hit if the first had kept it.
                Assert.Equal((round * 1000) + i, store.Get<Item>("items", $"i{i:D3}")!.Value);
                Assert.Equal((round * 1000) + i, store.Get<Item>("uses", $"u{i:D3}")!.Value);
                Assert.Equal((round * 1000) + i, store.Get<Item>("uses", $"u{i:D3}")!.Value);
            }
            Assert.Equal(Each, store.CacheStatistics.Documents);
        }
    }

    [Fact]
    public async Task TheLogIsBoundedInBytes_ACheckpointIsForcedBeforeTheBound()
    {
        const long Bound = 256 * 1024;
        const int Documents = 16;
        const int Rounds = 40;
        var dir = Directory.CreateTempSubdirectory("vault-wal-").FullName;
        long largestLog = 0;
        using var watching = new CancellationTokenSource();
        // The applier's own interval is an hour: only the bound makes it run.
        using (var store = new LiteDbStore(dir, NullLogger<LiteDbStore>.Instance, [typeof(Item)], ["items"], LiteDbStore.DefaultCacheBytes, TimeSpan.FromHours(1), maxLogBytes: Bound))
        {
            var watcher = Task.Run(async () =>
            {
                while (!watching.IsCancellationRequested)
                {
                    largestLog = Math.Max(largestLog, LogBytesOnDisk(dir));
                    await Task.Delay(1);
                }
            });
            var text = new string('x', 4096);
            // 16 writers changing their own document 40 times (640 changes, 2.6 MiB of log, ten
            // times the bound), concurrently: the log grows by up to 16 changes per group commit
            // while a pass moves the documents into the data file, so it is the writer's wait at
            // the bound, not the pass started at a quarter of it, that keeps the log under it.
            await Task.WhenAll(Enumerable.Range(0, Documents).Select(d => Task.Run(async () =>
            {
                for (var round = 0; round < Rounds; round++)
                {
                    await store.WriteAsync(tx =>
                    {
                        tx.Put("items", $"d{d:D2}", new Item { Value = round, Text = text });
                        return true;
                    }, CancellationToken.None);
                }
            })));
            await watching.CancelAsync();
            await watcher;
            // Waits for a pass still running, and moves what is left.
            store.Flush();
            Assert.True(store.Statistics.Applies > 1, "no checkpoint was forced before the log's bound");
            Assert.All(Enumerable.Range(0, Documents), d => Assert.Equal(Rounds - 1, store.Get<Item>("items", $"d{d:D2}")!.Value));
        }
        // At most one group past the bound: the group that crossed it is acknowledged, then the
        // writer waits (a group holds at most one change per writer).
        Assert.InRange(largestLog, 1, Bound + (Documents * 4300));
        using var reopened = new LiteDbStore(dir, NullLogger<LiteDbStore>.Instance, [typeof(Item)], ["items"]);
        Assert.All(Enumerable.Range(0, Documents), d => Assert.Equal(Rounds - 1, reopened.Get<Item>("items", $"d{d:D2}")!.Value));
    }

    [Fact]
    public async Task ADocumentChangedManyTimesBetweenTwoPasses_IsWrittenIntoTheDataFileOnce()
    {
        var dir = Directory.CreateTempSubdirectory("vault-wal-").FullName;
        using (var store = HoldingChangesInTheLog(dir))
        {
            for (var i = 0; i < 100; i++)
            {
                await store.WriteAsync(tx =>
                {
                    tx.Put("items", "same", new Item { Value = i });
                    tx.Put("items", $"once{i:D3}", new Item { Value = i });
                    return true;
                }, CancellationToken.None);
            }

            store.Flush();

            Assert.Equal(1, store.Statistics.Applies);
            // 200 changes: 100 documents written once each, and "same" once for its 100 changes.
            Assert.Equal(101, store.AppliedChanges);
        }
        using var db = new LiteDatabase(new ConnectionString { Filename = Path.Combine(dir, "vault.db"), Connection = ConnectionType.Direct });
        Assert.Equal(99, db.GetCollection("items").FindById("same")["Value"].AsInt32);
        Assert.Equal(101, db.GetCollection("items").Count());
    }

    /// <summary>The bytes of the write-ahead log's segments on disk (a segment deleted meanwhile counts nothing).</summary>
    private static long LogBytesOnDisk(string dir) => Directory.GetFiles(dir, "wal-*.log").Sum(path =>
    {
        try
        {
            return new FileInfo(path).Length;
        }
        catch (FileNotFoundException)
        {
            return 0L;
        }
    });

    private static LiteDbStore HoldingChangesInTheLog(string dir) =>
        new(dir, NullLogger<LiteDbStore>.Instance, [typeof(Item)], ["items"], LiteDbStore.DefaultCacheBytes, TimeSpan.FromHours(1));

    private static async Task WriteItemsAsync(LiteDbStore store, int count) =>
        await Task.WhenAll(Enumerable.Range(0, count).Select(i => store.WriteAsync(tx =>
        {
            tx.Put("items", $"i{i:D4}", new Item { Value = i });
            return i;
        }, CancellationToken.None)));

    private static void CopyFiles(string from, string to)
    {
        foreach (var file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
        }
    }
}
