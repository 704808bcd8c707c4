using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Vault.Server.Storage;

namespace Vault.Server.Backup;

/// <summary>
/// The backup file, version 1. Everything in it is what the data directory holds already:
/// documents of ciphertext and non-secret metadata, and the audit trail of HMACs.
/// <code>
/// "VAULTBAK" (8 bytes), format (int32 = 1)
/// header: JSON (length-prefixed UTF-8, <see cref="BackupHeader"/>): index, time, counts; nothing secret
/// sections, each a tag byte:
///   1: a document — collection, id (length-prefixed UTF-8), BSON (int32 length, bytes)
///   2: an audit file of the kept chain — name, content (int32 length, bytes), cut after the anchor's entry
///   0: the end
/// MAC (32 bytes): HMAC-SHA256, under a key derived from the keyring's HMAC root (purpose
/// "backup"), of the SHA-256 of every byte before it
/// </code>
/// Integers are little-endian. The MAC can be checked only with the keyring the backup holds,
/// unwrapped with the vault's passphrase or a quorum of its shares: a backup altered by anyone
/// else, a byte or a whole record, fails it.
/// </summary>
internal static class BackupFormat
{
    public const int Version = 1;
    public const string MacPurpose = "backup";
    public const int MacSize = 32;
    public const byte EndTag = 0;
    public const byte DocumentTag = 1;
    public const byte AuditFileTag = 2;
    public static ReadOnlySpan<byte> Magic => "VAULTBAK"u8;

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}

/// <summary>What a backup says of itself, in the clear: where it stands and what it holds (never a secret).</summary>
public sealed class BackupHeader
{
    public int Format { get; set; } = BackupFormat.Version;

    /// <summary>The store's commit index the snapshot stands at: every write acknowledged before it is in the backup, none after it.</summary>
    public long Index { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>How the vault is unsealed: 0 shares for a passphrase.</summary>
    public int SecretShares { get; set; }

    public int SecretThreshold { get; set; }

    public long Records { get; set; }

    /// <summary>Documents per collection.</summary>
    public SortedDictionary<string, long> Collections { get; set; } = new(StringComparer.Ordinal);

    public int AuditFiles { get; set; }

    /// <summary>The last audit entry carried (the chain's anchor at the snapshot); 0 for none.</summary>
    public ulong AuditThrough { get; set; }
}

/// <summary>
/// Writes a backup to a sink in chunks, hashing every byte on the way; <see cref="FinishAsync"/>
/// ends it with the MAC of that hash.
/// </summary>
internal sealed class BackupWriter(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink) : IDisposable
{
    private const int ChunkBytes = 256 * 1024;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly MemoryStream _buffer = new();
    private BinaryWriter? _out;

    public long BytesWritten { get; private set; }

    private BinaryWriter Out => _out ??= new BinaryWriter(_buffer, Encoding.UTF8, leaveOpen: true);

    public ValueTask WriteHeaderAsync(BackupHeader header, CancellationToken cancellationToken)
    {
        Out.Write(BackupFormat.Magic);
        Out.Write(BackupFormat.Version);
        Out.Write(JsonSerializer.Serialize(header, BackupFormat.Json));
        return SendIfFullAsync(cancellationToken);
    }

    public ValueTask WriteDocumentAsync(StoredDocument document, CancellationToken cancellationToken)
    {
        Out.Write(BackupFormat.DocumentTag);
        Out.Write(document.Collection);
        Out.Write(document.Id);
        Out.Write(document.Bson.Length);
        Out.Write(document.Bson);
        return SendIfFullAsync(cancellationToken);
    }

    public ValueTask WriteAuditFileAsync(string name, byte[] content, CancellationToken cancellationToken)
    {
        Out.Write(BackupFormat.AuditFileTag);
        Out.Write(name);
        Out.Write(content.Length);
        Out.Write(content);
        return SendIfFullAsync(cancellationToken);
    }

    /// <summary>Writes the end, then the MAC <paramref name="mac"/> makes of the hash of everything before it.</summary>
    public async ValueTask FinishAsync(Func<byte[], byte[]> mac, CancellationToken cancellationToken)
    {
        Out.Write(BackupFormat.EndTag);
        await SendAsync(cancellationToken);
        var tag = mac(_hash.GetHashAndReset());
        await sink(tag, cancellationToken);
        BytesWritten += tag.Length;
    }

    private ValueTask SendIfFullAsync(CancellationToken cancellationToken) =>
        _buffer.Length >= ChunkBytes ? SendAsync(cancellationToken) : ValueTask.CompletedTask;

    private async ValueTask SendAsync(CancellationToken cancellationToken)
    {
        Out.Flush();
        var bytes = _buffer.GetBuffer().AsMemory(0, (int)_buffer.Length);
        _hash.AppendData(bytes.Span);
        // At most a chunk per message, whatever one section weighs (an audit file can be 64 MiB,
        // a gRPC client takes 4 MB messages). The sink is done with the bytes once it returns.
        for (var offset = 0; offset < bytes.Length; offset += ChunkBytes)
        {
            await sink(bytes[offset..Math.Min(bytes.Length, offset + ChunkBytes)], cancellationToken);
        }
        BytesWritten += bytes.Length;
        _buffer.SetLength(0);
    }

    public void Dispose()
    {
        _out?.Dispose();
        _buffer.Dispose();
        _hash.Dispose();
    }
}

/// <summary>A backup read whole: its parts, the hash its MAC covers, and the MAC.</summary>
internal sealed class BackupContents
{
    public required BackupHeader Header { get; init; }
    public required StoreSnapshot Snapshot { get; init; }
    public required IReadOnlyList<(string Name, byte[] Content)> AuditFiles { get; init; }
    public required byte[] Digest { get; init; }
    public required byte[] Mac { get; init; }

    /// <summary>
    /// Parses a backup and checks its structure: the format, every section whole, the counts its
    /// header gives. Says nothing yet of its integrity: that is the MAC's, checked with the keyring.
    /// </summary>
    /// <exception cref="InvalidBackupException">Not a backup, damaged, or its counts do not match.</exception>
    public static BackupContents Parse(byte[] file)
    {
        var bodyLength = file.Length - BackupFormat.MacSize;
        if (bodyLength < BackupFormat.Magic.Length + 4 || !file.AsSpan(0, BackupFormat.Magic.Length).SequenceEqual(BackupFormat.Magic))
        {
            throw new InvalidBackupException("not a vault backup (it does not start as one)");
        }
        try
        {
            using var reader = new BinaryReader(new MemoryStream(file, 0, bodyLength, writable: false), Encoding.UTF8);
            reader.ReadBytes(BackupFormat.Magic.Length);
            var format = reader.ReadInt32();
            if (format != BackupFormat.Version)
            {
                throw new InvalidBackupException($"backup format {format} is not one this server reads (it reads format {BackupFormat.Version})");
            }
            var header = JsonSerializer.Deserialize<BackupHeader>(reader.ReadString(), BackupFormat.Json)
                ?? throw new InvalidBackupException("the backup's header is empty");
            if (header.Collections is null || header.Collections.Keys.Any(name => !IsCollectionName(name)))
            {
                throw new InvalidBackupException("the backup is damaged: its header's collections are not a vault's");
            }
            var documents = new List<StoredDocument>();
            var audit = new List<(string, byte[])>();
            while (true)
            {
                var tag = reader.ReadByte();
                if (tag == BackupFormat.EndTag)
                {
                    break;
                }
                switch (tag)
                {
                    case BackupFormat.DocumentTag:
                        documents.Add(new StoredDocument(reader.ReadString(), reader.ReadString(), ReadBlock(reader)));
                        break;
                    case BackupFormat.AuditFileTag:
                        audit.Add((reader.ReadString(), ReadBlock(reader)));
                        break;
                    default:
                        throw new InvalidBackupException($"the backup is damaged: unknown section {tag} at byte {reader.BaseStream.Position - 1}");
                }
            }
            if (reader.BaseStream.Position != bodyLength)
            {
                throw new InvalidBackupException("the backup is damaged: bytes after its end");
            }
            CheckCounts(header, documents, audit.ConvertAll(a => a.Item1));
            return new BackupContents
            {
                Header = header,
                Snapshot = new StoreSnapshot(header.Index, documents),
                AuditFiles = audit,
                Digest = SHA256.HashData(file.AsSpan(0, bodyLength)),
                Mac = file[bodyLength..],
            };
        }
        catch (Exception ex) when (ex is EndOfStreamException or JsonException or IOException or ArgumentException or DecoderFallbackException or FormatException)
        {
            throw new InvalidBackupException($"the backup is damaged or cut short ({ex.GetType().Name})");
        }
    }

    private static byte[] ReadBlock(BinaryReader reader)
    {
        var length = reader.ReadInt32();
        if (length < 0 || length > reader.BaseStream.Length - reader.BaseStream.Position)
        {
            throw new InvalidBackupException($"the backup is damaged: a section's length ({length}) runs past its end");
        }
        return reader.ReadBytes(length);
    }

    private static void CheckCounts(BackupHeader header, List<StoredDocument> documents, List<string> auditNames)
    {
        var auditFiles = auditNames.Count;
        if (header.Records != documents.Count)
        {
            throw new InvalidBackupException($"the backup holds {documents.Count} records but its header counts {header.Records}");
        }
        var counted = documents.GroupBy(d => d.Collection, StringComparer.Ordinal).ToDictionary(g => g.Key, g => (long)g.Count(), StringComparer.Ordinal);
        foreach (var name in counted.Keys.Union(header.Collections.Keys, StringComparer.Ordinal))
        {
            var held = counted.GetValueOrDefault(name);
            var said = header.Collections.GetValueOrDefault(name);
            if (held != said)
            {
                throw new InvalidBackupException($"the backup holds {held} {name} records but its header counts {said}");
            }
        }
        if (header.AuditFiles != auditFiles)
        {
            throw new InvalidBackupException($"the backup holds {auditFiles} audit files but its header counts {header.AuditFiles}");
        }
        var duplicate = documents.GroupBy(d => (d.Collection, d.Id)).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new InvalidBackupException($"the backup is damaged: a {duplicate.Key.Collection} record appears twice");
        }
        if (auditNames.Count != auditNames.Distinct(StringComparer.Ordinal).Count() || auditNames.Any(n => !Audit.AuditFiles.IsAuditFile(n)))
        {
            throw new InvalidBackupException("the backup is damaged: its audit files' names are not an audit log's");
        }
    }

    /// <summary>A name the store can hold a collection under (letters, digits, underscores).</summary>
    private static bool IsCollectionName(string name) =>
        name.Length is > 0 and <= 60 && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') && !char.IsAsciiDigit(name[0]);
}

/// <summary>A backup file that cannot be used; the message says why, in one line.</summary>
internal sealed class InvalidBackupException(string message) : Exception(message);
