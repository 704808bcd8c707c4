using System.Security.Cryptography;
using System.Text;
using Vault.Server.Backup;
using Vault.Server.Storage;

namespace Vault.Tests.Backup;

/// <summary>
/// The backup file format on its own: written in bounded chunks whatever a section weighs (a gRPC
/// client takes 4 MB messages; an audit file grows to 64 MiB), read back whole, and every crafted or
/// damaged file refused as damaged with a one-line reason rather than an exception of another kind.
/// </summary>
public sealed class BackupFormatTests
{
    private const int MaxChunk = 256 * 1024;

    [Fact]
    public async Task EveryChunk_IsBounded_WhateverASectionWeighs_AndTheFileReadsBackWhole()
    {
        var (file, chunks, mac) = await WriteAsync(auditBytes: 5 * 1024 * 1024 + 17);

        Assert.All(chunks, c => Assert.InRange(c, 1, MaxChunk));
        Assert.True(chunks.Count > 20, $"{chunks.Count} chunks");
        var contents = BackupContents.Parse(file);
        Assert.Equal(42, contents.Header.Index);
        Assert.Equal(["kv_meta", "system"], contents.Snapshot.Documents.Select(d => d.Collection).Distinct().ToArray());
        Assert.Equal(5 * 1024 * 1024 + 17, Assert.Single(contents.AuditFiles).Content.Length);
        Assert.Equal(SHA256.HashData(file.AsSpan(0, file.Length - 32)), contents.Digest);
        Assert.Equal(mac, contents.Mac);
    }

    [Fact]
    public async Task ATruncatedFile_IsDamaged_WhereverItIsCut()
    {
        var (file, _, _) = await WriteAsync(auditBytes: 3000);
        foreach (var length in new[] { 0, 7, 12, 40, file.Length / 3, file.Length / 2, file.Length - 33, file.Length - 1 })
        {
            Assert.Throws<InvalidBackupException>(() => BackupContents.Parse(file[..length]));
        }
        Assert.Throws<InvalidBackupException>(() => BackupContents.Parse([.. file, 0]));
    }

    [Theory]
    [InlineData("null collections")]
    [InlineData("a collection name LiteDB refuses")]
    [InlineData("counts that do not match")]
    [InlineData("the same audit file twice")]
    [InlineData("an audit file named outside the log")]
    [InlineData("the same record twice")]
    public async Task ACraftedFile_IsRefusedAsDamaged(string craft)
    {
        var header = Header();
        var documents = Documents();
        var audit = new List<(string, byte[])> { ("audit-000001.jsonl", "{}\n"u8.ToArray()) };
        switch (craft)
        {
            case "null collections":
                header.Collections = null!;
                break;
            case "a collection name LiteDB refuses":
                header.Collections["../etc"] = 0;
                break;
            case "counts that do not match":
                header.Collections["system"]++;
                break;
            case "the same audit file twice":
                audit.Add(audit[0]);
                header.AuditFiles = 2;
                break;
            case "an audit file named outside the log":
                audit[0] = ("../../vault.db", audit[0].Item2);
                break;
            case "the same record twice":
                documents.Add(documents[0]);
                header.Records++;
                header.Collections[documents[0].Collection]++;
                break;
        }
        var (file, _, _) = await WriteAsync(header, documents, audit);

        var refused = Assert.Throws<InvalidBackupException>(() => BackupContents.Parse(file));
        Assert.DoesNotContain('\n', refused.Message);
    }

    private static BackupHeader Header()
    {
        var header = new BackupHeader { Index = 42, CreatedAt = DateTimeOffset.UnixEpoch, Records = 3, AuditFiles = 1, AuditThrough = 1 };
        header.Collections["kv_meta"] = 1;
        header.Collections["system"] = 2;
        return header;
    }

    private static List<StoredDocument> Documents() =>
    [
        new("kv_meta", "app/db", Encoding.UTF8.GetBytes("not parsed here")),
        new("system", "audit-anchor", [1, 2, 3]),
        new("system", "keyring", [4, 5, 6]),
    ];

    private static Task<(byte[] File, List<int> Chunks, byte[] Mac)> WriteAsync(int auditBytes) =>
        WriteAsync(Header(), Documents(), [("audit-000001.jsonl", new byte[auditBytes])]);

    private static async Task<(byte[] File, List<int> Chunks, byte[] Mac)> WriteAsync(BackupHeader header, List<StoredDocument> documents, List<(string Name, byte[] Content)> audit)
    {
        var output = new MemoryStream();
        var chunks = new List<int>();
        var mac = RandomNumberGenerator.GetBytes(32);
        using (var writer = new BackupWriter((bytes, _) =>
        {
            chunks.Add(bytes.Length);
            output.Write(bytes.Span);
            return ValueTask.CompletedTask;
        }))
        {
            await writer.WriteHeaderAsync(header, default);
            foreach (var document in documents)
            {
                await writer.WriteDocumentAsync(document, default);
            }
            foreach (var (name, content) in audit)
            {
                await writer.WriteAuditFileAsync(name, content, default);
            }
            await writer.FinishAsync(_ => mac, default);
        }
        return (output.ToArray(), chunks, mac);
    }
}
