using Microsoft.Extensions.Logging.Abstractions;
using Vault.Server.Storage;

namespace Vault.Tests.Storage;

public sealed class GroupCommitTests
{
    private sealed class Item
    {
        public int Value { get; set; }
    }

    [Fact]
    public async Task ConcurrentWrites_AreGroupedIntoFewerCommits_AndAllLand()
    {
        var dir = Directory.CreateTempSubdirectory("vault-store-").FullName;
        using (var store = new LiteDbStore(dir, NullLogger<LiteDbStore>.Instance, [typeof(Item)], ["items"]))
        {
            var writes = Enumerable.Range(0, 400).Select(i => store.WriteAsync(tx =>
            {
                tx.Put("items", $"i{i:D4}", new Item { Value = i });
                return i;
            }, CancellationToken.None));
            await Task.WhenAll(writes);
            Assert.Equal(400, store.Statistics.Writes);
            Assert.True(store.Statistics.Commits < 400, $"{store.Statistics.Commits} commits for 400 concurrent writes: no grouping");
        }
        using var reopened = new LiteDbStore(dir, NullLogger<LiteDbStore>.Instance);
        Assert.Equal(Enumerable.Range(0, 400), reopened.List<Item>("items", "i").Select(p => p.Value.Value));
    }

    [Fact]
    public async Task AThrowingUnit_LeavesNothingBehind_AndDoesNotFailItsNeighbours()
    {
        var dir = Directory.CreateTempSubdirectory("vault-store-").FullName;
        using var store = new LiteDbStore(dir, NullLogger<LiteDbStore>.Instance, [typeof(Item)], ["items"]);
        var good = store.WriteAsync(tx =>
        {
            tx.Put("items", "good", new Item { Value = 1 });
            return true;
        }, CancellationToken.None);
        var bad = store.WriteAsync<bool>(tx =>
        {
            tx.Put("items", "half-written", new Item { Value = 2 });
            throw new InvalidOperationException("boom");
        }, CancellationToken.None);
        Assert.True(await good);
        await Assert.ThrowsAsync<InvalidOperationException>(() => bad);
        Assert.NotNull(store.Get<Item>("items", "good"));
        Assert.Null(store.Get<Item>("items", "half-written"));
    }

    [Fact]
    public async Task ReadsRacingGroupCommits_NeverFail_AndSeeEveryAcknowledgedWrite()
    {
        var dir = Directory.CreateTempSubdirectory("vault-store-").FullName;
        using var store = new LiteDbStore(dir, NullLogger<LiteDbStore>.Instance, [typeof(Item)], ["items"]);
        var acknowledged = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(4));
        var writers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var id = $"w{w}-{i:D6}";
                await store.WriteAsync(tx =>
                {
                    tx.Put("items", id, new Item { Value = i });
                    return true;
                }, CancellationToken.None);
                Interlocked.Increment(ref acknowledged);
            }
        })).ToList();
        var readers = Enumerable.Range(0, 8).Select(r => Task.Run(() =>
        {
            var reads = 0;
            while (!stop.IsCancellationRequested)
            {
                var seen = Volatile.Read(ref acknowledged);
                var listed = store.List<Item>("items", "w").Count;
                Assert.True(listed >= seen, $"listed {listed} items after {seen} were acknowledged");
                store.Get<Item>("items", $"w{r % 8}-000000");
                reads++;
            }
            return reads;
        })).ToList();
        await Task.WhenAll(writers);
        var totalReads = (await Task.WhenAll(readers)).Sum();
        Assert.True(totalReads > 0);
        Assert.Equal(acknowledged, store.List<Item>("items", "w").Count);
    }
}
