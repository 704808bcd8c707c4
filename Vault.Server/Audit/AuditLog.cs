using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Vault.Server.Auth;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Audit;

/// <summary>How audit entries reach the disk before the reply goes out.</summary>
public enum AuditFlush
{
    /// <summary>Entries queued together are written and fsync'd once (group commit).</summary>
    Grouped,
    /// <summary>Every entry is written and fsync'd on its own.</summary>
    EveryEntry,
}

/// <summary>
/// The append-only, hash-chained audit trail: JSON lines under <c>DATA_DIR/audit/</c>, rolled
/// over by size. Each entry carries the previous entry's hash, and its own hash is an HMAC
/// (keyring-derived key) over the entry, so only the vault can extend the chain and any edit,
/// deletion, reordering or forged line breaks it. A request is answered only after its entry is
/// written and fsync'd, and fails closed when that is impossible. Two paths append, one at a
/// time: the writer thread (requests that changed nothing, failures) and the store's writer,
/// which writes the entries of the requests whose changes it is about to commit
/// (<see cref="BeforeCommit"/>), so a change and its entry are durable together. Where the chain
/// stands is anchored in the store (<see cref="AuditAnchorRecord"/>), so a log cut short or
/// deleted is found at start-up and by <see cref="Verify"/>; the vault then refuses every request
/// until an operator acknowledges the gap (<see cref="AcknowledgeGapAsync"/>). Older files leave
/// the kept chain only through <see cref="ArchiveAsync"/>, which records in the anchor where it
/// now begins.
/// </summary>
public sealed partial class AuditLog : ICommitParticipant, IAsyncDisposable
{
    public const string HmacPurpose = "audit";
    private readonly System.Collections.Concurrent.BlockingCollection<Pending> _queue = new();
    // Guards the chain head (_seq, _prevHash, _fileIndex, _headLoaded) between the writer and Verify.
    private readonly Lock _chain = new();
    private readonly SecurityBarrier _barrier;
    private readonly IVaultStore _store;
    private readonly TimeProvider _clock;
    private readonly ILogger<AuditLog> _logger;
    private readonly string _directory;
    private readonly long _maxFileBytes;
    private readonly AuditFlush _flush;
    private readonly Thread _writer;
    private readonly AuditVerifier _verifier;
    private ulong _seq;
    private string _prevHash = "";
    private int _fileIndex;
    private bool _headLoaded;
    // The anchor as last written or loaded (its seal aside), and the entries found missing at start-up.
    private AuditAnchorRecord _anchor = new();
    private volatile MissingEntries? _missing;
    private volatile string? _failure;
    private Task _lastAnchorWrite = Task.CompletedTask;
    private readonly DiskReserve _reserve;
    // The scopes whose entries the store's current group carries (store writer thread only):
    // given back if the group cannot be committed after all.
    private List<AuditScope> _claimed = [];

    public AuditLog(IOptions<AuditOptions> options, SecurityBarrier barrier, IVaultStore store, DiskReserve reserve, TimeProvider clock, ILogger<AuditLog> logger)
    {
        _barrier = barrier;
        _store = store;
        _reserve = reserve;
        _clock = clock;
        _logger = logger;
        var o = options.Value;
        _directory = o.Directory;
        _maxFileBytes = o.MaxFileBytes;
        _flush = o.Flush;
        _verifier = new AuditVerifier(_directory, SealHmac);
        Directory.CreateDirectory(_directory);
        // A thread of its own: each group blocks in fsync, which must not hold a pool thread.
        _writer = new Thread(WriterLoop) { Name = "vault-audit-writer", IsBackground = true };
        _writer.Start();
        store.Enlist(this);
        // At start-up, not at the first request: a log shorter than its anchor must keep the
        // vault from serving (and health from saying it serves) before anyone asks.
        try
        {
            lock (_chain)
            {
                LoadHead();
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException)
        {
            SetFailure(ex.Message);
            AuditLogMessages.AppendFailed(_logger, 0, ex);
        }
    }

    /// <summary>Raised when the log starts or stops failing, with the new failing flag.</summary>
    public event Action<bool>? FailingChanged;

    /// <summary>Why the log cannot be written (entries missing, or the last append failed), or null while it is healthy.</summary>
    public string? Failure => _missing?.Describe() ?? _failure;

    /// <summary>Entries the anchor records that the log no longer holds, until an operator acknowledges them.</summary>
    public MissingEntries? Missing => _missing;

    /// <summary>Appends one entry; completes once it is on disk.</summary>
    /// <exception cref="AuditUnavailableException">The entry could not be written.</exception>
    public Task AppendAsync(AuditEvent entry)
    {
        var pending = new Pending(entry);
        if (!TryEnqueue(pending))
        {
            throw new AuditUnavailableException("audit log is closed");
        }
        return pending.Done.Task;
    }

    /// <summary>
    /// While the log is failing: tries to open and flush the current file without writing an
    /// entry, and clears the failure if that works. Requests are refused until it does.
    /// </summary>
    /// <returns>True when the log is writable again.</returns>
    public async Task<bool> ProbeAsync()
    {
        var pending = new Pending(null);
        if (!TryEnqueue(pending))
        {
            return false;
        }
        try
        {
            await pending.Done.Task;
            return true;
        }
        catch (AuditUnavailableException)
        {
            return false;
        }
    }

    /// <summary>The hex HMAC the log would hold for <paramref name="value"/>.</summary>
    public string HashValue(string value) => Convert.ToHexStringLower(_barrier.Hmac(HmacPurpose, Encoding.UTF8.GetBytes(value)));

    private byte[] SealHmac(string purpose, byte[] value) => _barrier.Hmac(purpose, value);

    /// <summary>The audit files of the kept chain (archived ones aside), oldest first.</summary>
    public IReadOnlyList<string> Files() => AuditFiles.Kept(_directory, _anchor.StartFile);

    /// <summary>Every entry of the kept chain, oldest first; lines that do not parse are skipped.</summary>
    public IEnumerable<AuditLine> ReadAll()
    {
        foreach (var file in Files())
        {
            foreach (var line in File.ReadLines(file))
            {
                AuditLine? parsed = null;
                try
                {
                    parsed = JsonSerializer.Deserialize(line, AuditJson.Default.AuditLine);
                }
                catch (JsonException)
                {
                    // Verify reports it; tail shows what it can.
                }
                if (parsed is not null)
                {
                    yield return parsed;
                }
            }
        }
    }

    /// <summary>
    /// Walks the chain from where the kept chain begins and reports the first entry that is
    /// wrong; the log must also reach the entry the store's anchor records, so a log cut short or
    /// deleted (also while the vault was stopped) is reported with what is missing.
    /// </summary>
    public AuditVerification Verify()
    {
        // Entries up to this one were completely written and fsync'd before we start reading;
        // a line after them that does not parse may be a group still being written.
        ulong? written;
        lock (_chain)
        {
            written = _headLoaded ? _seq : null;
        }
        return _verifier.Verify(_store.Get<AuditAnchorRecord>(Collections.System, AuditAnchorRecord.Id), written);
    }

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
    /// Writes the entries of the requests whose changes the store is about to commit, and puts
    /// the new anchor into that same commit. Runs on the store's writer thread.
    /// </summary>
    public void BeforeCommit(IReadOnlyList<object> tags, IStoreWriter writer)
    {
        var scopes = new List<AuditScope>();
        foreach (var tag in tags)
        {
            if (tag is AuditScope scope && scope.TryClaim())
            {
                scopes.Add(scope);
            }
        }
        _claimed = scopes;
        if (scopes.Count == 0)
        {
            return;
        }
        try
        {
            AuditAnchorRecord? head;
            lock (_chain)
            {
                LoadHead();
                if (_missing is { } missing)
                {
                    throw new AuditUnavailableException($"audit log unavailable: {missing.Describe()}");
                }
                head = WriteEntries(scopes.Select(s => s.ToEvent("ok", "", HashValue)).ToList());
            }
            SetFailure(null);
            AdvanceAnchor(writer, head!);
        }
        catch (Exception ex)
        {
            foreach (var scope in scopes)
            {
                scope.Release();
            }
            if (ex is VaultSealedException or AuditUnavailableException)
            {
                throw;
            }
            if (DiskReserve.IsDiskFull(ex))
            {
                // The entries were taken back; the reserve given up now is the room the
                // requests' refusals are written in.
                _reserve.ReportFull(ex);
                throw _reserve.Refusal();
            }
            SetFailure(ex.Message);
            AuditLogMessages.AppendFailed(_logger, scopes.Count, ex);
            throw new AuditUnavailableException("audit log unavailable: request refused");
        }
    }

    /// <summary>
    /// The group whose entries <see cref="BeforeCommit"/> wrote was not committed (the disk had
    /// no room for the store's log): its requests' entries are given back, so each request's end
    /// writes one more, with the error it was answered with. Its entries said the change was
    /// being committed; the later entry of the same request id is its outcome.
    /// </summary>
    public void CommitFailed(IReadOnlyList<object> tags)
    {
        foreach (var scope in _claimed)
        {
            scope.Release();
        }
        _claimed = [];
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            _queue.CompleteAdding();
        }
        catch (ObjectDisposedException)
        {
            return;
        }
        await Task.Run(_writer.Join);
        _queue.Dispose();
        try
        {
            await _lastAnchorWrite;
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or VaultException)
        {
            // Logged where it failed; the entries themselves are on disk.
        }
    }

    private bool TryEnqueue(Pending pending)
    {
        try
        {
            return _queue.TryAdd(pending);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ObjectDisposedException)
        {
            // Adding after CompleteAdding: the log is closing.
            return false;
        }
    }

    private void WriterLoop()
    {
        var group = new List<Pending>();
        foreach (var first in _queue.GetConsumingEnumerable())
        {
            group.Clear();
            group.Add(first);
            while (group.Count < (_flush == AuditFlush.EveryEntry ? 1 : 256) && _queue.TryTake(out var next))
            {
                group.Add(next);
            }
            try
            {
                AuditAnchorRecord? head;
                try
                {
                    head = WriteGroup(group);
                }
                catch (IOException ex) when (DiskReserve.IsDiskFull(ex) && !_reserve.IsFull)
                {
                    // The disk filled: the reserve is given up for exactly this, and the group
                    // (the refusals among them) is written once more in its room.
                    _reserve.ReportFull(ex);
                    head = WriteGroup(group);
                }
                SetFailure(null);
                var done = group.ToArray();
                if (head is null)
                {
                    Acknowledge(done);
                }
                else
                {
                    AnchorThenAcknowledge(head, done);
                }
            }
            catch (Exception ex) when (ex is VaultSealedException || ex is AuditUnavailableException && _missing is not null)
            {
                // Sealed while the entries waited: the key to chain them is gone. Or entries are
                // missing and not yet acknowledged. Neither is a new audit failure.
                foreach (var pending in group)
                {
                    pending.Done.TrySetException(ex);
                }
            }
            catch (Exception ex)
            {
                // Whatever went wrong, the writer lives on: the group fails closed and the next
                // request probes again.
                SetFailure(ex.Message);
                AuditLogMessages.AppendFailed(_logger, group.Count, ex);
                foreach (var pending in group)
                {
                    pending.Done.TrySetException(new AuditUnavailableException("audit log unavailable: request refused"));
                }
            }
        }
    }

    private static void Acknowledge(Pending[] group)
    {
        foreach (var pending in group)
        {
            pending.Done.TrySetResult();
        }
    }

    /// <summary>
    /// Anchors the group in the store, then answers its requests. The store groups these with
    /// other writes, and the writer goes on with the next group meanwhile. The entries are on
    /// disk already: a store that cannot take the anchor (it reports that itself) delays nothing.
    /// </summary>
    private void AnchorThenAcknowledge(AuditAnchorRecord head, Pending[] group)
    {
        if (_reserve.IsFull)
        {
            // The store takes no writes; the anchor catches up with the next group once it does
            // (a log longer than its anchor is not a gap).
            Acknowledge(group);
            return;
        }
        Task write;
        try
        {
            write = _store.WriteAsync(tx =>
            {
                AdvanceAnchor(tx, head);
                return true;
            }, CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            write = Task.FromException(ex);
        }
        _lastAnchorWrite = write.ContinueWith(t =>
        {
            if (t.Exception is { } error)
            {
                AuditLogMessages.AnchorFailed(_logger, head.Seq, error.GetBaseException());
            }
            Acknowledge(group);
        }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
    }

    /// <summary>Puts <paramref name="head"/> unless the stored anchor is already past it (the two paths that append race to the store).</summary>
    private static void AdvanceAnchor(IStoreWriter tx, AuditAnchorRecord head)
    {
        var stored = tx.Get<AuditAnchorRecord>(Collections.System, AuditAnchorRecord.Id);
        if (stored is null || stored.Seq < head.Seq)
        {
            tx.Put(Collections.System, AuditAnchorRecord.Id, head);
        }
    }

    /// <summary>Writes a group's entries (none for a probe: then only checks the file opens); the new anchor, or null if nothing was written.</summary>
    private AuditAnchorRecord? WriteGroup(List<Pending> group)
    {
        lock (_chain)
        {
            LoadHead();
            if (_missing is { } missing)
            {
                throw new AuditUnavailableException($"audit log unavailable: {missing.Describe()}");
            }
            var events = group.Where(p => p.Event is not null).Select(p => p.Event!).ToList();
            if (events.Count == 0)
            {
                using var probe = new FileStream(CurrentFile(), FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 1);
                probe.Flush(flushToDisk: true);
                return null;
            }
            return WriteEntries(events);
        }
    }

    /// <summary>Appends entries to the chain and fsyncs them; the anchor that records them, sealed. Under <see cref="_chain"/>.</summary>
    private AuditAnchorRecord WriteEntries(IReadOnlyList<AuditEvent> events)
    {
        var seq = _seq;
        var prev = _prevHash;
        using var text = new MemoryStream();
        foreach (var e in events)
        {
            var line = new AuditLine
            {
                Seq = ++seq,
                Time = _clock.GetUtcNow(),
                RequestId = e.RequestId,
                Accessor = e.Accessor,
                Rpc = e.Rpc,
                Path = e.Path,
                Outcome = e.Outcome,
                ErrorCode = e.ErrorCode,
                CredentialHmac = e.CredentialHmac,
                PrevHash = prev,
            };
            // Serialised once: the hash covers these bytes (the entry without its hash, which
            // is its last property), and the line is the same bytes with the hash appended —
            // exactly what serialising the whole entry gives, as Verify checks.
            var canonical = JsonSerializer.SerializeToUtf8Bytes(line, AuditJson.Default.AuditLine);
            var hash = Convert.ToHexStringLower(_barrier.Hmac(HmacPurpose, canonical));
            text.Write(canonical.AsSpan(0, canonical.Length - 1));
            text.Write(",\"hash\":\""u8);
            text.Write(Encoding.ASCII.GetBytes(hash));
            text.Write("\"}\n"u8);
            prev = hash;
        }
        var path = CurrentFile();
        // Sealed before anything is written, so a seal cannot fall between the entries and their anchor.
        var anchor = _anchor.Copy();
        anchor.Seq = seq;
        anchor.Hash = prev;
        anchor.File = System.IO.Path.GetFileName(path);
        anchor.Seal = RecordSeal.Compute(SealHmac, Collections.System, AuditAnchorRecord.Id, anchor.Canonical());
        // Opened per group: a file that became unwritable (or was replaced) fails this group
        // and the next one tries again, so the log recovers once the disk does.
        using (var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 1))
        {
            var committedLength = stream.Length;
            try
            {
                stream.Write(text.GetBuffer().AsSpan(0, (int)text.Length));
                stream.Flush(flushToDisk: true);
            }
            catch
            {
                // Entries of a group that failed were never acknowledged: take them back, so
                // the next group does not reuse their numbers over a fragment.
                stream.SetLength(committedLength);
                stream.Flush(flushToDisk: true);
                throw;
            }
            if (stream.Length >= _maxFileBytes)
            {
                _fileIndex++;
            }
        }
        _seq = seq;
        _prevHash = prev;
        _anchor = anchor;
        return anchor;
    }

    private string CurrentFile() => System.IO.Path.Combine(_directory, AuditFiles.Name(_fileIndex));

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

    private void SetFailure(string? failure)
    {
        var wasFailing = _failure is not null;
        _failure = failure;
        if (wasFailing != (failure is not null))
        {
            FailingChanged?.Invoke(Failure is not null);
        }
    }

    /// <summary>An entry to write; null for a probe.</summary>
    private sealed class Pending(AuditEvent? entry)
    {
        public AuditEvent? Event { get; } = entry;
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>The result of walking the chain.</summary>
public sealed record AuditVerification(bool Ok, ulong EntriesChecked, string File, ulong Line, string Reason)
{
    public static AuditVerification Intact(ulong count) => new(true, count, "", 0, "");

    public static AuditVerification Broken(ulong count, string file, ulong line, string reason) => new(false, count, file, line, reason);
}

/// <summary>The audit entry could not be written, so the request is refused (UNAVAILABLE).</summary>
public sealed class AuditUnavailableException(string message) : VaultException(message);

/// <summary>Entries the store's anchor records that the log no longer holds.</summary>
public sealed record MissingEntries(ulong FirstMissing, ulong LastMissing, string LastHash, string File)
{
    public string Describe() =>
        $"the audit log is missing entries {FirstMissing}–{LastMissing} (the store's anchor records entry {LastMissing} in {File}): it was cut short or deleted; "
        + $"find out why, then acknowledge with `vaultctl audit acknowledge-gap --last-missing {LastMissing}`";
}

internal static partial class AuditLogMessages
{
    [LoggerMessage(5003, LogLevel.Critical, "Audit log is missing entries {First}–{Last} (anchored in {File}); refusing requests until an operator acknowledges the gap")]
    public static partial void EntriesMissing(ILogger logger, ulong first, ulong last, string file);

    [LoggerMessage(5004, LogLevel.Warning, "Audit gap {First}–{Last} acknowledged by {Accessor}; the chain goes on")]
    public static partial void GapAcknowledged(ILogger logger, ulong first, ulong last, string accessor);

    [LoggerMessage(5005, LogLevel.Error, "Audit anchor for entry {Seq} could not be stored")]
    public static partial void AnchorFailed(ILogger logger, ulong seq, Exception exception);

    [LoggerMessage(5002, LogLevel.Warning, "Audit file {File} ended in an unfinished entry ({Bytes} bytes, never acknowledged); cut off")]
    public static partial void TornTailCut(ILogger logger, string file, long bytes);

    [LoggerMessage(5001, LogLevel.Critical, "Audit log cannot be written; failing closed for {Count} requests")]
    public static partial void AppendFailed(ILogger logger, int count, Exception exception);
}
