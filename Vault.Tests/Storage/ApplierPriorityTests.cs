using Microsoft.Extensions.Logging.Abstractions;
using Vault.Server.Storage;

namespace Vault.Tests.Storage;

/// <summary>
/// The applier (moving acknowledged changes into the data file) runs below the priority of the
/// threads that answer requests, so that a burst of large writes cannot take the cores a small
/// read needs (the kv-put-large benchmark measures what that buys).
/// </summary>
public sealed class ApplierPriorityTests
{
    private sealed class Doc
    {
        public string Value { get; set; } = "";
    }

    /// <summary>The nice value of each of this process's threads named <paramref name="name"/> (as /proc shows it, cut to 15 characters).</summary>
    private static List<int> NiceOfThreads(string name)
    {
        var nice = new List<int>();
        foreach (var task in Directory.GetDirectories("/proc/self/task"))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n') != name)
                {
                    continue;
                }
                var stat = File.ReadAllText(Path.Combine(task, "stat"));
                // Fields after the command's closing parenthesis: state is field 3, nice field 19.
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                nice.Add(int.Parse(fields[19 - 3], System.Globalization.CultureInfo.InvariantCulture));
            }
            catch (IOException)
            {
                // The thread ended while we looked.
            }
        }
        return nice;
    }

    [Fact]
    public async Task TheApplierThread_RunsAtBackgroundPriority_WhileRequestThreadsDoNot()
    {
        var dir = Directory.CreateTempSubdirectory("vault-applier-").FullName;
        try
        {
            using var store = new LiteDbStore(dir, NullLogger<LiteDbStore>.Instance, [typeof(Doc)], ["docs"]);
            await store.WriteAsync(tx =>
            {
                tx.Put("docs", "a", new Doc { Value = "x" });
                return true;
            }, CancellationToken.None);

            // Other tests' stores run beside this one; each applier lowers its priority as it starts.
            var applier = NiceOfThreads("vault-store-app");
            for (var waited = 0; applier.Count == 0 || applier.Exists(n => n != BackgroundPriority.Nice); waited += 10)
            {
                Assert.True(waited < 10_000, $"applier threads not at nice {BackgroundPriority.Nice} after 10 s: {string.Join(", ", applier)}");
                await Task.Delay(10);
                applier = NiceOfThreads("vault-store-app");
            }

            Assert.True(BackgroundPriority.Nice > 0);
            Assert.Equal([0], NiceOfThreads("vault-store-wri").Distinct());
            Assert.Equal([0], NiceOfThreads(".NET TP Worker").Distinct());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
