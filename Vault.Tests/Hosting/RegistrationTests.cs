using Microsoft.Extensions.Logging.Abstractions;
using Vault.Server.Hosting;
using Vault.Server.Storage;

namespace Vault.Tests.Hosting;

/// <summary>
/// Each area registers its own services, options and stored document types; the host only fills
/// the areas' options from its configuration. So no domain class depends on the host's options,
/// and a document type nobody declared is refused every time it is used, not only when two threads
/// happen to meet LiteDB's lazy type map at once.
/// </summary>
public sealed class RegistrationTests
{
    private sealed class Declared
    {
        public string Value { get; set; } = "";
        public Nested? Inner { get; set; }
    }

    private sealed class Nested
    {
        public int Number { get; set; }
    }

    private sealed class WithAnId
    {
        public string Id { get; set; } = "";
    }

    private sealed class Undeclared
    {
        public string Value { get; set; } = "";
    }

    [Fact]
    public void NoClassOutsideTheHostAndTheTransport_TakesTheHostsOptions()
    {
        var offenders = typeof(VaultServerOptions).Assembly.GetTypes()
            .Where(t => t.Namespace is { } ns && !ns.EndsWith(".Hosting", StringComparison.Ordinal) && !ns.EndsWith(".Grpc", StringComparison.Ordinal))
            .Where(t => t.GetConstructors().Any(c => c.GetParameters().Any(p => p.ParameterType.ToString().Contains(nameof(VaultServerOptions), StringComparison.Ordinal))))
            .Select(t => t.FullName)
            .ToList();
        Assert.True(offenders.Count == 0, $"take VaultServerOptions (give the area options of its own, filled by the host): {string.Join(", ", offenders)}");
    }

    [Fact]
    public async Task AnUndeclaredDocumentType_IsRefusedEveryTime_ADeclaredOneAndWhatItNestsAreNot()
    {
        var dir = Directory.CreateTempSubdirectory("vault-registration-").FullName;
        using var store = new LiteDbStore(dir, NullLogger<LiteDbStore>.Instance, [typeof(Declared)], ["docs"]);

        await store.WriteAsync(tx =>
        {
            tx.Put("docs", "a", new Declared { Value = "kept", Inner = new Nested { Number = 7 } });
            return true;
        }, CancellationToken.None);
        Assert.Equal(7, store.Get<Declared>("docs", "a")?.Inner?.Number);

        for (var attempt = 0; attempt < 3; attempt++)
        {
            var write = await Assert.ThrowsAsync<InvalidOperationException>(() => store.WriteAsync(tx =>
            {
                tx.Put("docs", "b", new Undeclared { Value = "refused" });
                return true;
            }, CancellationToken.None));
            Assert.Contains(nameof(Undeclared), write.Message, StringComparison.Ordinal);
            Assert.Contains("AddStoredDocuments", write.Message, StringComparison.Ordinal);
            Assert.Throws<InvalidOperationException>(() => store.Get<Undeclared>("docs", "a"));
            Assert.Throws<InvalidOperationException>(() => store.List<Undeclared>("docs", ""));
        }
        Assert.Null(store.Get<Declared>("docs", "b"));
    }

    [Fact]
    public void ADocumentTypeWithAPropertyLiteDbWouldTakeAsItsKey_IsRefusedAtStartUp()
    {
        // An entity's Id once read back as the store's key for it, and its seal failed on every read.
        var dir = Directory.CreateTempSubdirectory("vault-registration-").FullName;

        var error = Assert.Throws<InvalidOperationException>(() => new LiteDbStore(dir, NullLogger<LiteDbStore>.Instance, [typeof(Declared), typeof(WithAnId)], ["docs"]));

        Assert.Contains($"{nameof(WithAnId)}.Id", error.Message, StringComparison.Ordinal);
        Directory.Delete(dir, recursive: true);
    }
}
