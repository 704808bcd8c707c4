using System.Text.Json;
using Vault.Server.Audit;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Backup;

/// <summary>
/// Online backups: a consistent snapshot of the store at one commit index, taken while writes go
/// on, with the audit trail up to the chain's anchor in that snapshot, written as a
/// <see cref="BackupFormat"/> file to a sink (the gRPC stream). Everything in it is ciphertext or
/// non-secret metadata already; the MAC at its end is keyed from the keyring.
/// </summary>
public sealed class BackupService(IVaultStore store, SecurityBarrier barrier, AuditLog audit, TimeProvider clock)
{
    /// <summary>Writes a backup to <paramref name="sink"/>.</summary>
    /// <param name="started">Called with the header once the snapshot is taken, before any byte is written.</param>
    /// <returns>The header written, and the backup's size in bytes.</returns>
    /// <exception cref="VaultSealedException">The vault is sealed (the MAC needs the keyring).</exception>
    /// <exception cref="UnavailableException">The audit log moved while the backup was taken (an archive); take it again.</exception>
    public async Task<(BackupHeader Header, long Bytes)> WriteAsync(Func<BackupHeader, ValueTask> started, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink, CancellationToken cancellationToken)
    {
        if (barrier.IsSealed)
        {
            throw new VaultSealedException();
        }
        // Blocking: it reads the whole data file (while the applier waits).
        var snapshot = await Task.Run(store.Snapshot, cancellationToken);
        var keyring = Find(snapshot, KeyringRecord.Id)?.As<KeyringRecord>()
            ?? throw new PreconditionException("the vault is not initialised");
        var anchor = Find(snapshot, AuditAnchorRecord.Id)?.As<AuditAnchorRecord>();
        var auditFiles = anchor is null ? [] : ReadAuditFiles(audit.LogDirectory, anchor);
        var header = new BackupHeader
        {
            Index = snapshot.Index,
            CreatedAt = clock.GetUtcNow(),
            SecretShares = keyring.SecretShares,
            SecretThreshold = keyring.SecretThreshold,
            Records = snapshot.Documents.Count,
            AuditFiles = auditFiles.Count,
            AuditThrough = anchor?.Seq ?? 0,
        };
        foreach (var group in snapshot.Documents.GroupBy(d => d.Collection, StringComparer.Ordinal))
        {
            header.Collections[group.Key] = group.Count();
        }
        await started(header);
        using var writer = new BackupWriter(sink);
        await writer.WriteHeaderAsync(header, cancellationToken);
        foreach (var document in snapshot.Documents)
        {
            await writer.WriteDocumentAsync(document, cancellationToken);
        }
        foreach (var (name, content) in auditFiles)
        {
            await writer.WriteAuditFileAsync(name, content, cancellationToken);
        }
        await writer.FinishAsync(digest => barrier.Hmac(BackupFormat.MacPurpose, digest), cancellationToken);
        return (header, writer.BytesWritten);
    }

    private static StoredDocument? Find(StoreSnapshot snapshot, string id) =>
        snapshot.Documents.FirstOrDefault(d => d.Collection == Collections.System && d.Id == id);

    /// <summary>
    /// The kept chain's files, from where it begins to the anchor's file, that one cut after the
    /// anchor's entry: exactly the trail the snapshot's anchor vouches for. Entries after it are
    /// for requests the snapshot does not hold (or reads after it). A file archived since the
    /// snapshot is read from the archive.
    /// </summary>
    internal static List<(string Name, byte[] Content)> ReadAuditFiles(string directory, AuditAnchorRecord anchor)
    {
        var names = AuditFiles.All(directory).Concat(AuditFiles.All(Path.Combine(directory, AuditFiles.ArchiveDirectory)))
            .Select(Path.GetFileName)
            .OfType<string>()
            .Where(n => string.CompareOrdinal(n, anchor.StartFile) >= 0 && string.CompareOrdinal(n, anchor.File) <= 0)
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToList();
        var files = new List<(string, byte[])>();
        foreach (var name in names)
        {
            var content = ReadEither(directory, name);
            files.Add((name, name == anchor.File ? CutAfter(content, anchor.Seq, name) : content));
        }
        if (anchor.Seq > 0 && (files.Count == 0 || files[^1].Item1 != anchor.File))
        {
            throw new UnavailableException($"audit file {anchor.File}, which holds the anchor's entry, was not found; take the backup again");
        }
        return files;
    }

    private static byte[] ReadEither(string directory, string name)
    {
        foreach (var path in new[] { Path.Combine(directory, name), Path.Combine(directory, AuditFiles.ArchiveDirectory, name) })
        {
            try
            {
                return File.ReadAllBytes(path);
            }
            catch (FileNotFoundException)
            {
                // Moved to the archive meanwhile: the next place.
            }
        }
        throw new UnavailableException($"audit file {name} moved while the backup was taken (an archive); take the backup again");
    }

    /// <summary>The file's lines up to and including the entry numbered <paramref name="seq"/>.</summary>
    private static byte[] CutAfter(byte[] content, ulong seq, string name)
    {
        var start = 0;
        while (start < content.Length)
        {
            var end = Array.IndexOf(content, (byte)'\n', start);
            if (end < 0)
            {
                break;
            }
            try
            {
                if (JsonSerializer.Deserialize(content.AsSpan(start, end - start), AuditJson.Default.AuditLine) is { } line && line.Seq == seq)
                {
                    return content[..(end + 1)];
                }
            }
            catch (JsonException)
            {
                // Not an entry the anchor can point at; go on.
            }
            start = end + 1;
        }
        throw new UnavailableException($"audit file {name} does not hold entry {seq}, the anchor's; take the backup again");
    }
}
