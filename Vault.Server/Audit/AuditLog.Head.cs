using System.Text.Json;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Audit;

/// <summary>Where the chain stands: picked up at start-up, and gaps found there acknowledged.</summary>
public sealed partial class AuditLog
{
    /// <summary>
    /// Acknowledges the entries found missing at start-up (<see cref="Missing"/>), after an
    /// operator has looked into why: the gap is recorded in the anchor (so verify accepts it and
    /// says so), the chain goes on from the hash the anchor kept, and requests are served again.
    /// </summary>
    /// <param name="lastMissing">The last missing entry, as the refusal named it: a confirmation.</param>
    /// <param name="acknowledgedBy">The operator's token accessor.</param>
    /// <returns>The gap acknowledged.</returns>
    public async Task<MissingEntries> AcknowledgeGapAsync(ulong lastMissing, string acknowledgedBy, CancellationToken cancellationToken)
    {
        AuditAnchorRecord updated;
        MissingEntries missing;
        lock (_chain)
        {
            LoadHead();
            missing = _missing ?? throw new PreconditionException("the audit log is not missing any entries");
            if (lastMissing != missing.LastMissing)
            {
                throw new ValidationException("last_missing", $"must be {missing.LastMissing}, the last missing entry (entries {missing.FirstMissing}–{missing.LastMissing} are missing)");
            }
            updated = _anchor.Copy();
            updated.Gaps.Add(new AuditGapRecord
            {
                FirstMissing = missing.FirstMissing,
                LastMissing = missing.LastMissing,
                LastHash = missing.LastHash,
                AcknowledgedAtUnixMs = _clock.GetUtcNow().ToUnixTimeMilliseconds(),
                AcknowledgedBy = acknowledgedBy,
            });
            updated.Seal = RecordSeal.Compute(SealHmac, Collections.System, AuditAnchorRecord.Id, updated.Canonical());
        }
        // Not the request's own commit: its entry is appended once the gap is acknowledged.
        CommitContext.Current = null;
        await _store.WriteAsync(tx =>
        {
            tx.Put(Collections.System, AuditAnchorRecord.Id, updated);
            return true;
        }, cancellationToken);
        lock (_chain)
        {
            _anchor = updated;
            _seq = missing.LastMissing;
            _prevHash = missing.LastHash;
            _missing = null;
        }
        AuditLogMessages.GapAcknowledged(_logger, missing.FirstMissing, missing.LastMissing, acknowledgedBy);
        _failure = null;
        // Failing until now (the gap), whatever the last append did: health serves again.
        FailingChanged?.Invoke(false);
        return missing;
    }

    /// <summary>
    /// Picks up the chain where the last run left it: the newest file's last entry. A log that
    /// ends before the entry the store's anchor records has lost entries: they are noted in
    /// <see cref="Missing"/>, and nothing is appended until an operator acknowledges them.
    /// </summary>
    private void LoadHead()
    {
        if (_headLoaded)
        {
            return;
        }
        var anchor = _store.Get<AuditAnchorRecord>(Collections.System, AuditAnchorRecord.Id);
        _anchor = anchor?.Copy() ?? new AuditAnchorRecord();
        var files = Files();
        // With no kept file left, the chain goes on where the kept chain began, and in a file
        // named no earlier than its start (a file named before it would count as archived).
        _fileIndex = Math.Max(1, AuditFiles.Index(_anchor.StartFile));
        _seq = _anchor.StartSeq - 1;
        _prevHash = _anchor.StartPrevHash;
        if (files.Count > 0)
        {
            var newest = files[^1];
            CutTornTail(newest);
            _fileIndex = AuditFiles.Index(System.IO.Path.GetFileName(newest));
            var last = File.ReadLines(newest).LastOrDefault(l => l.Length > 0)
                ?? (files.Count > 1 ? File.ReadLines(files[^2]).LastOrDefault(l => l.Length > 0) : null);
            if (last is not null)
            {
                var entry = JsonSerializer.Deserialize(last, AuditJson.Default.AuditLine)
                    ?? throw new IOException("the last audit entry cannot be read");
                _seq = entry.Seq;
                _prevHash = entry.Hash ?? "";
            }
        }
        // What a previous run left is as durable as it will get; a flush from here on fsyncs anew.
        _durableSeq = _seq;
        if (anchor is not null && _seq < anchor.Seq)
        {
            _missing = new MissingEntries(_seq + 1, anchor.Seq, anchor.Hash, anchor.File);
            AuditLogMessages.EntriesMissing(_logger, _seq + 1, anchor.Seq, anchor.File);
        }
        _headLoaded = true;
    }

    /// <summary>
    /// A crash in the middle of a group can leave a last line without its newline: entries that
    /// were never acknowledged. They are cut off before the chain continues.
    /// </summary>
    private void CutTornTail(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        var length = stream.Length;
        if (length == 0)
        {
            return;
        }
        var position = length;
        var one = new byte[1];
        while (position > 0)
        {
            stream.Position = position - 1;
            stream.ReadExactly(one);
            if (one[0] == (byte)'\n')
            {
                break;
            }
            position--;
        }
        if (position < length)
        {
            AuditLogMessages.TornTailCut(_logger, System.IO.Path.GetFileName(file), length - position);
            stream.SetLength(position);
            stream.Flush(flushToDisk: true);
        }
    }
}
