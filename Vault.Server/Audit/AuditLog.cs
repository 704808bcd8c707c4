using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Vault.Server.Auth;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Audit;

/// <summary>
/// The append-only, hash-chained audit trail: JSON lines under <c>DATA_DIR/audit/</c>, rolled
/// over by size. Each entry carries the previous entry's hash, and its own hash is an HMAC
/// (keyring-derived key) over the entry, so only the vault can extend the chain and any edit,
/// deletion, reordering or forged line breaks it. A request is answered only after its entry is
/// written, and fails closed when that is impossible; an entry of a change is fsync'd with the
/// change, one of a read-only request within <see cref="AuditOptions.ReadOnlyFlushWindow"/>
/// (see <see cref="AppendReadOnlyAsync"/>). Two paths append, one at a
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

    /// <summary>Entries waiting for the writer thread (their requests wait with them).</summary>
    public int QueueDepth => _queue.Count;
    private readonly SecurityBarrier _barrier;
    private readonly IVaultStore _store;
    private readonly TimeProvider _clock;
    private readonly ILogger<AuditLog> _logger;
    private readonly string _directory;
    private readonly long _maxFileBytes;
    private readonly AuditFlush _flush;
    private readonly Thread _writer;
    private readonly Thread _flusher;
    private readonly TimeSpan _readOnlyWindow;
    private readonly AuditVerifier _verifier;
    private ulong _seq;
    // The last entry known to be fsync'd (under _chain); the flusher makes the rest durable.
    private ulong _durableSeq;
    private string _prevHash = "";
    private int _fileIndex;
    private bool _headLoaded;
    // The anchor as last written or loaded (its seal aside), and the entries found missing at start-up.
    private AuditAnchorRecord _anchor = new();
    // The current file's handle, kept between groups (see OpenCurrent; under _chain).
    private OpenFile? _open;
    // Set once the log is disposed: a late group (the store's writer) opens the file for itself only.
    private bool _keepNoHandle;
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
        _readOnlyWindow = o.ReadOnlyFlushWindow;
        _verifier = new AuditVerifier(_directory, SealHmac);
        Directory.CreateDirectory(_directory);
        // A thread of its own: each group blocks in fsync, which must not hold a pool thread.
        _writer = new Thread(WriterLoop) { Name = "vault-audit-writer", IsBackground = true };
        _writer.Start();
        _flusher = new Thread(FlusherLoop) { Name = "vault-audit-flusher", IsBackground = true };
        _flusher.Start();
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

    /// <summary>Appends one entry; completes once it is on disk (fsync'd) and anchored.</summary>
    /// <exception cref="AuditUnavailableException">The entry could not be written.</exception>
    public Task AppendAsync(AuditEvent entry) => Append(entry, durableBeforeReply: true);

    /// <summary>
    /// Appends the entry of a request that changed nothing; completes once it is written (a
    /// crash of the vault's process cannot lose it), and the flusher fsyncs and anchors it
    /// within <see cref="AuditOptions.ReadOnlyFlushWindow"/> (at once when that is zero). A
    /// reply then waits for no fsync of a disk that a heavy writer keeps busy.
    /// </summary>
    /// <exception cref="AuditUnavailableException">The entry could not be written.</exception>
    public Task AppendReadOnlyAsync(AuditEvent entry) => Append(entry, durableBeforeReply: _readOnlyWindow == TimeSpan.Zero);

    private Task Append(AuditEvent entry, bool durableBeforeReply)
    {
        var pending = new Pending(entry, durableBeforeReply);
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
        var pending = new Pending(null, DurableBeforeReply: true);
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

    /// <summary>Where the log's files are (archived ones under <see cref="AuditFiles.ArchiveDirectory"/>).</summary>
    internal string LogDirectory => _directory;

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
            AuditAnchorRecord head;
            lock (_chain)
            {
                LoadHead();
                if (_missing is { } missing)
                {
                    throw new AuditUnavailableException($"audit log unavailable: {missing.Describe()}");
                }
                // Fsync'd under the lock, on the handle that wrote them: if that fails the entries
                // are cut off again (no read has chained after them yet), so a change refused
                // here never leaves an "ok" entry behind.
                head = WriteEntries(scopes.Select(s => s.ToEvent("ok", "", HashValue)).ToList(), sync: true);
            }
            SetFailure(null);
            AdvanceAnchor(writer, head);
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
            Telemetry.ProcessMetrics.AuditWriteFailed();
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
        // The flusher makes the last entries written durable and anchors them before it ends.
        _writerEnded = true;
        await _closing.CancelAsync();
        _flushSignal.Set();
        await Task.Run(_flusher.Join);
        _flushSignal.Dispose();
        _closing.Dispose();
        lock (_chain)
        {
            _keepNoHandle = true;
            if (_open is { } open)
            {
                CloseCurrent(open.Stream);
            }
        }
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
            // One entry that must be durable before its reply makes the whole group so.
            var sync = group.Exists(p => p.DurableBeforeReply);
            try
            {
                AuditAnchorRecord? head;
                try
                {
                    head = WriteGroup(group, sync);
                }
                catch (IOException ex) when (DiskReserve.IsDiskFull(ex) && !_reserve.IsFull)
                {
                    // The disk filled: the reserve is given up for exactly this, and the group
                    // (the refusals among them) is written once more in its room.
                    _reserve.ReportFull(ex);
                    head = WriteGroup(group, sync);
                }
                SetFailure(null);
                var done = group.ToArray();
                if (head is null)
                {
                    Acknowledge(done);
                }
                else if (!sync)
                {
                    // Written: the flusher fsyncs and anchors it, and the replies go now.
                    Acknowledge(done);
                    _flushSignal.Set();
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
                Telemetry.ProcessMetrics.AuditWriteFailed();
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
            write = StoreAnchorAsync(head);
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

    /// <summary>Anchors <paramref name="head"/> in the store, in a commit of its own.</summary>
    private Task StoreAnchorAsync(AuditAnchorRecord head) => _store.WriteAsync(tx =>
    {
        AdvanceAnchor(tx, head);
        return true;
    }, CancellationToken.None);

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
    private AuditAnchorRecord? WriteGroup(List<Pending> group, bool sync)
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
            return WriteEntries(events, sync);
        }
    }

    /// <summary>
    /// Appends entries to the chain, and fsyncs them (with every entry written before them) if
    /// <paramref name="sync"/>; the anchor that records them, sealed. Under <see cref="_chain"/>.
    /// </summary>
    private AuditAnchorRecord WriteEntries(IReadOnlyList<AuditEvent> events, bool sync)
    {
        // Both ways in (a change's entries with its commit, the writer's groups) write here.
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var head = AppendToChain(events, sync);
        Telemetry.ProcessMetrics.AuditWriteDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
        return head;
    }

    private AuditAnchorRecord AppendToChain(IReadOnlyList<AuditEvent> events, bool sync)
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
                Entity = e.Entity,
                EntityId = e.EntityId,
                Rpc = e.Rpc,
                Path = e.Path,
                Outcome = e.Outcome,
                ErrorCode = e.ErrorCode,
                CredentialHmac = e.CredentialHmac,
                Event = e.Event,
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
        var anchor = _anchor.Copy();
        anchor.Seq = seq;
        anchor.Hash = prev;
        anchor.File = System.IO.Path.GetFileName(path);
        // Sealed before anything is written, so a seal of the vault cannot fall between the
        // entries and their anchor (the flusher stores it later, sealed or not by then).
        anchor.Seal = RecordSeal.Compute(SealHmac, Collections.System, AuditAnchorRecord.Id, anchor.Canonical());
        var durable = sync;
        var bytes = text.GetBuffer().AsSpan(0, (int)text.Length);
        var (stream, committedLength) = OpenCurrent(path);
        var length = committedLength + bytes.Length;
        try
        {
            stream.Write(bytes);
            // A file is left only once everything in it is durable: the flusher fsyncs the current one.
            durable |= length >= _maxFileBytes;
            if (durable)
            {
                stream.Flush(flushToDisk: true);
            }
        }
        catch
        {
            // Entries of a group that failed were never acknowledged: take them back, so the
            // next group does not reuse their numbers over a fragment; and the next group opens
            // the file anew, so the log recovers once the disk does.
            try
            {
                stream.SetLength(committedLength);
                stream.Flush(flushToDisk: true);
            }
            finally
            {
                CloseCurrent(stream);
            }
            throw;
        }
        if (length >= _maxFileBytes || _open is null)
        {
            CloseCurrent(stream);
            if (length >= _maxFileBytes)
            {
                _fileIndex++;
            }
        }
        else
        {
            _open = _open.Value with { Identity = _open.Value.Identity with { Length = length } };
        }
        _seq = seq;
        _prevHash = prev;
        _anchor = anchor;
        if (durable)
        {
            _durableSeq = seq;
        }
        return anchor;
    }

    /// <summary>
    /// The current file, open for appending. The handle is kept between groups while the path
    /// still names the file it is open on, at the length this log left it (one <c>stat</c> per
    /// group): a file replaced, moved away, cut or appended to by anyone else is opened anew, and
    /// a file that cannot be opened fails the group, as when it was opened for every group.
    /// Under <see cref="_chain"/>.
    /// </summary>
    private (FileStream Stream, long Length) OpenCurrent(string path)
    {
        if (_open is { } open)
        {
            if (open.Path == path && FileIdentity.Of(open.NativePath) is { } now && now == open.Identity)
            {
                return (open.Stream, open.Identity.Length);
            }
            CloseCurrent(open.Stream);
        }
        var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 1);
        try
        {
            var identity = _keepNoHandle ? null : FileIdentity.Of(stream.SafeFileHandle);
            if (identity is not null)
            {
                _open = new OpenFile(path, FileIdentity.NativePath(path), stream, identity.Value);
            }
            // Where that is not knowable, the handle serves this group only.
            return (stream, identity?.Length ?? stream.Length);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Closes <paramref name="stream"/>, and forgets it if it is the kept handle.</summary>
    private void CloseCurrent(FileStream stream)
    {
        if (_open is { } open && ReferenceEquals(open.Stream, stream))
        {
            _open = null;
        }
        stream.Dispose();
    }

    private string CurrentFile() => System.IO.Path.Combine(_directory, AuditFiles.Name(_fileIndex));

    private void SetFailure(string? failure)
    {
        var wasFailing = _failure is not null;
        _failure = failure;
        if (wasFailing != (failure is not null))
        {
            FailingChanged?.Invoke(Failure is not null);
        }
    }

    private readonly record struct OpenFile(string Path, byte[] NativePath, FileStream Stream, FileIdentity Identity);

    /// <summary>An entry to write (null for a probe), and whether its reply waits for its fsync and anchor.</summary>
    private sealed record Pending(AuditEvent? Event, bool DurableBeforeReply)
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
