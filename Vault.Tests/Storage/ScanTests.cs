using Microsoft.Extensions.Logging.Abstractions;
using Vault.Server.Storage;

namespace Vault.Tests.Storage;

/// <summary>
/// <see cref="IVaultStore.Scan{T}"/> on the data file: a page at a time, in id order, the same
/// documents a list gives — those in the data file and those acknowledged but not yet applied to it
/// (puts, rewrites, deletes, at page edges) — and a change made while it runs is seen at most once.
/// </summary>
public sealed class ScanTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("vault-scan-test-");

    public sealed class Doc
    {
        public string Value { get; set; } = "";
    }

    public void Dispose() => _dir.Delete(recursive: true);

    private LiteDbStore Open() => new(_dir.FullName, NullLogger<LiteDbStore>.Instance, [typeof(Doc)], ["docs"], 0, TimeSpan.FromHours(1));

    private static Task PutAsync(LiteDbStore store, params string[] ids) => store.WriteAsync(tx =>
    {
        foreach (var id in ids)
        {
            tx.Put("docs", id, new Doc { Value = id });
        }
        return 0;
    }, default);

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(1000)]
    public async Task AScan_GivesWhatAListGives_FromTheDataFileAndFromChangesNotYetInIt(int pageSize)
    {
        using var store = Open();
        await PutAsync(store, [.. Enumerable.Range(0, 20).Select(i => $"d{i:D2}")]);
        store.Flush();
        // Not yet in the data file (the applier waits an hour here): new ids between and after
        // the stored ones, a rewrite, and deletes, one of them at the very start.
        await PutAsync(store, "d03a", "d19z", "d25");
        await store.WriteAsync(tx => { tx.Put("docs", "d07", new Doc { Value = "rewritten" }); tx.Delete("docs", "d00"); tx.Delete("docs", "d10"); return 0; }, default);

        var scanned = store.Scan<Doc>("docs", pageSize).ToList();

        Assert.Equal(store.List<Doc>("docs", "").Select(d => d.Key), scanned.Select(d => d.Key));
        // Every value as last written: the rewrite not yet in the data file wins over the one in it.
        Assert.Equal(scanned.Select(d => d.Key == "d07" ? "rewritten" : d.Key), scanned.Select(d => d.Value.Value));
        Assert.Equal(20 - 2 + 3, scanned.Count);
        Assert.Contains("d25", scanned.Select(d => d.Key));
        Assert.DoesNotContain("d10", scanned.Select(d => d.Key));
        Assert.Empty(store.Scan<Doc>("none", pageSize));
    }

    [Fact]
    public async Task ChangesMadeWhileAScanRuns_AreSeenAtMostOnce_AndWritesAreNotHeldUp()
    {
        using var store = Open();
        await PutAsync(store, [.. Enumerable.Range(0, 30).Select(i => $"d{i:D2}")]);
        store.Flush();
        var seen = new List<string>();
        foreach (var (id, _) in store.Scan<Doc>("docs", pageSize: 4))
        {
            seen.Add(id);
            if (id == "d05")
            {
                // Between pages no lock is held: this write is acknowledged mid-scan (and stays out
                // of the data file: the scan's later pages find it among the changes not yet in it).
                await PutAsync(store, "d01a", "d05a", "d20a");
            }
        }

        Assert.Equal(seen.Distinct().Count(), seen.Count);
        // Ahead of the scan: seen. Behind it, or in the page already read: not.
        Assert.Contains("d20a", seen);
        Assert.DoesNotContain("d01a", seen);
        Assert.DoesNotContain("d05a", seen);
        Assert.Equal(30 + 1, seen.Count);
    }
}
