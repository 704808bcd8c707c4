using System.Text.Json;
using Microsoft.Extensions.Logging;
using Vault.Server.Auth;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Audit;

/// <summary>Retention: taking older, closed files out of the kept chain, on an operator's request.</summary>
public sealed partial class AuditLog
{
    /// <summary>
    /// Archives the older, closed audit files. First the anchor records where the kept chain now
    /// begins (its first file, that file's first entry and the hash it chains to), durably and in
    /// the same commit as the request's own audit entry; then the files before it are moved into
    /// <c>DATA_DIR/audit/archive/</c>. From then on verify (online and offline) starts there, so a
    /// file removed by hand is still found missing, while archived files no longer count: moved
    /// back, deleted or shipped elsewhere, they change nothing. Files are moved, never deleted:
    /// what to keep and for how long is the operator's decision, and they still hold the chain.
    /// A crash between the two steps leaves files the anchor already counts as archived in place;
    /// the next archive moves them. The current file is never archived.
    /// </summary>
    /// <param name="keepFiles">Keep the newest this many files (the current one counts); 0 when <paramref name="beforeFile"/> is given.</param>
    /// <param name="beforeFile">Or: archive every file named before this one, which becomes the first kept file.</param>
    /// <param name="archivedBy">The operator's token accessor, for the log.</param>
    /// <returns>The files moved (also earlier archived ones found back in place), and where the kept chain now begins.</returns>
    /// <exception cref="ValidationException">Neither or both of <paramref name="keepFiles"/> and <paramref name="beforeFile"/>; a file name that is not an audit file, does not exist or is newer than the current file.</exception>
    /// <exception cref="PreconditionException">The chain is broken: archiving would hide where.</exception>
    public async Task<AuditArchiveResult> ArchiveAsync(uint keepFiles, string beforeFile, string archivedBy, CancellationToken cancellationToken)
    {
        if (keepFiles == 0 && beforeFile.Length == 0)
        {
            throw new ValidationException("keep_files", "give the number of newest files to keep (at least 1), or before_file");
        }
        if (keepFiles != 0 && beforeFile.Length != 0)
        {
            throw new ValidationException("keep_files", "give keep_files or before_file, not both");
        }
        if (beforeFile.Length != 0 && !AuditFiles.IsAuditFile(beforeFile))
        {
            throw new ValidationException("before_file", "is not an audit file name (audit-NNNNNN.jsonl)");
        }
        // Whatever is archived leaves the kept chain for good: it must be sound up to now, or a
        // break (an edited line, a file removed by hand) would disappear with it.
        var verdict = Verify();
        if (!verdict.Ok)
        {
            var where = verdict.File.Length > 0 ? $"{verdict.File} line {verdict.Line}" : "its anchor";
            throw new PreconditionException($"the audit chain is broken at {where}: {verdict.Reason}; nothing archived (archiving would hide it)");
        }

        AuditAnchorRecord? previous = null;
        AuditAnchorRecord? updated = null;
        try
        {
            await _store.WriteAsync(tx =>
            {
                AuditAnchorRecord anchor;
                // On the store's writer, under the chain lock: every entry appended from now on
                // carries the new start in its anchor, and every anchor already made but not yet
                // stored is older than this one (AdvanceAnchor keeps the newer).
                lock (_chain)
                {
                    LoadHead();
                    if (_missing is { } missing)
                    {
                        throw new AuditUnavailableException($"audit log unavailable: {missing.Describe()}");
                    }
                    var start = NewStartFile(keepFiles, beforeFile);
                    if (string.CompareOrdinal(start, _anchor.StartFile) <= 0
                        || !Files().Any(f => string.CompareOrdinal(System.IO.Path.GetFileName(f), start) < 0))
                    {
                        return false;
                    }
                    var (startSeq, startPrevHash) = FirstEntryOf(start);
                    anchor = _anchor.Copy();
                    anchor.StartFile = start;
                    anchor.StartSeq = startSeq;
                    anchor.StartPrevHash = startPrevHash;
                    anchor.Seal = RecordSeal.Compute(SealHmac, Collections.System, AuditAnchorRecord.Id, anchor.Canonical());
                    previous = _anchor;
                    updated = anchor;
                    _anchor = anchor;
                }
                var stored = tx.Get<AuditAnchorRecord>(Collections.System, AuditAnchorRecord.Id);
                if (stored is null || stored.Seq <= anchor.Seq)
                {
                    tx.Put(Collections.System, AuditAnchorRecord.Id, anchor);
                }
                return true;
            }, cancellationToken);
        }
        catch when (updated is not null)
        {
            // Not durable: later anchors must not carry the new start either.
            UndoStart(previous!, updated);
            throw;
        }

        AuditAnchorRecord now;
        lock (_chain)
        {
            now = _anchor;
        }
        var moved = MoveToArchive(now.StartFile);
        if (updated is not null)
        {
            AuditLogMessages.Archived(_logger, moved.Count, updated.StartFile, updated.StartSeq, archivedBy);
        }
        return new AuditArchiveResult(moved, now.StartFile.Length > 0 ? now.StartFile : Files().Select(System.IO.Path.GetFileName).FirstOrDefault() ?? "", now.StartSeq);
    }

    /// <summary>The first file to keep. Under <see cref="_chain"/>.</summary>
    private string NewStartFile(uint keepFiles, string beforeFile)
    {
        var current = AuditFiles.Name(_fileIndex);
        // The current file counts even before its first entry is written.
        var kept = Files().Select(f => System.IO.Path.GetFileName(f)!).Append(current).Distinct().Order(StringComparer.Ordinal).ToList();
        if (keepFiles != 0)
        {
            return keepFiles >= kept.Count ? kept[0] : kept[^(int)keepFiles];
        }
        if (string.CompareOrdinal(beforeFile, current) > 0)
        {
            throw new ValidationException("before_file", $"{beforeFile} is newer than the current file {current}, which is never archived");
        }
        if (string.CompareOrdinal(beforeFile, _anchor.StartFile) >= 0 && !kept.Contains(beforeFile))
        {
            throw new ValidationException("before_file", $"{beforeFile} is not an audit file of the kept chain (the files are {kept[0]} to {current})");
        }
        return beforeFile;
    }

    /// <summary>The seq of the first entry in <paramref name="file"/> and the hash it chains to; for a current file still empty, the next entry's. Under <see cref="_chain"/>.</summary>
    private (ulong Seq, string PrevHash) FirstEntryOf(string file)
    {
        var path = System.IO.Path.Combine(_directory, file);
        var first = File.Exists(path) ? File.ReadLines(path).FirstOrDefault(l => l.Length > 0) : null;
        if (first is null)
        {
            if (file != AuditFiles.Name(_fileIndex))
            {
                throw new PreconditionException($"{file} holds no entry; nothing archived");
            }
            return (_seq + 1, _prevHash);
        }
        AuditLine? entry = null;
        try
        {
            entry = JsonSerializer.Deserialize(first, AuditJson.Default.AuditLine);
        }
        catch (JsonException)
        {
            // Reported below.
        }
        if (entry?.Hash is null || !_verifier.IsGenuine(entry, first))
        {
            throw new PreconditionException($"the first entry of {file} is not one the vault wrote; nothing archived");
        }
        return (entry.Seq, entry.PrevHash);
    }

    private void UndoStart(AuditAnchorRecord previous, AuditAnchorRecord updated)
    {
        lock (_chain)
        {
            if (_anchor.StartFile != updated.StartFile)
            {
                return;
            }
            var restored = _anchor.Copy();
            restored.StartFile = previous.StartFile;
            restored.StartSeq = previous.StartSeq;
            restored.StartPrevHash = previous.StartPrevHash;
            try
            {
                restored.Seal = RecordSeal.Compute(SealHmac, Collections.System, AuditAnchorRecord.Id, restored.Canonical());
            }
            catch (VaultSealedException)
            {
                // No key to seal with, and none to append with either: the next unseal reloads the anchor the store holds.
                return;
            }
            _anchor = restored;
        }
    }

    /// <summary>Moves every audit file named before <paramref name="startFile"/> into the archive directory; the names moved, oldest first.</summary>
    private List<string> MoveToArchive(string startFile)
    {
        var moved = new List<string>();
        if (startFile.Length == 0)
        {
            return moved;
        }
        var archive = System.IO.Path.Combine(_directory, AuditFiles.ArchiveDirectory);
        foreach (var file in AuditFiles.All(_directory).Where(f => string.CompareOrdinal(System.IO.Path.GetFileName(f), startFile) < 0))
        {
            var name = System.IO.Path.GetFileName(file);
            try
            {
                Directory.CreateDirectory(archive);
                // Never over an archived file of the same name (one copied back, say): this one
                // is outside the kept chain either way, so it is left where it is.
                File.Move(file, System.IO.Path.Combine(archive, name), overwrite: false);
                moved.Add(name);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                AuditLogMessages.ArchiveMoveFailed(_logger, name, ex);
            }
        }
        return moved;
    }
}

/// <summary>What an archive did: the files moved into <c>audit/archive/</c>, and where the kept chain now begins.</summary>
public sealed record AuditArchiveResult(IReadOnlyList<string> ArchivedFiles, string StartFile, ulong StartSeq);

internal static partial class AuditLogMessages
{
    [LoggerMessage(5006, LogLevel.Information, "Archived {Count} audit files; the kept chain begins at entry {StartSeq} in {StartFile} (archived by {Accessor})")]
    public static partial void Archived(ILogger logger, int count, string startFile, ulong startSeq, string accessor);

    [LoggerMessage(5007, LogLevel.Warning, "Audit file {File} could not be moved to the archive; it stays where it is, outside the kept chain")]
    public static partial void ArchiveMoveFailed(ILogger logger, string file, Exception exception);
}
