using Vault.Clocks;
using Vault.Server.Storage;

namespace Vault.Server.Audit;

/// <summary>
/// The flusher: makes the entries of read-only requests durable after their replies went.
/// They were written (to the operating system, so a crash of the vault's process loses none)
/// before the reply; the flusher fsyncs the current file and anchors the chain's head in the
/// store, at most once per <see cref="AuditOptions.ReadOnlyFlushWindow"/> and at once when it
/// has waited that long. A reply therefore never waits for an fsync queued behind a large
/// write on the same disk, and what a power loss can take is bounded by the window (plus the
/// fsync's own time). The log never has entries its anchor records and the disk lacks: the
/// anchor is written only after the fsync that covers it.
/// </summary>
public sealed partial class AuditLog
{
    private readonly AutoResetEvent _flushSignal = new(false);
    // Set once the writer has ended: the flusher flushes a last time and ends too.
    private volatile bool _writerEnded;
    private readonly CancellationTokenSource _closing = new();
    // The last entry the flusher anchored (flusher thread only).
    private ulong _anchoredSeq;

    private void FlusherLoop()
    {
        long? lastStart = null;
        while (true)
        {
            _flushSignal.WaitOne();
            var ending = _writerEnded;
            if (!ending && lastStart is { } last)
            {
                // At most one flush per window: entries written meanwhile join this one.
                try
                {
                    _clock.ElapsedAsync(last, _readOnlyWindow, _closing.Token).GetAwaiter().GetResult();
                }
                catch (OperationCanceledException)
                {
                    // Closing: flush now, whatever the window says.
                }
            }
            lastStart = _clock.GetTimestamp();
            FlushWritten();
            if (ending)
            {
                return;
            }
        }
    }

    /// <summary>Fsyncs what was written and not yet made durable, then anchors it.</summary>
    private void FlushWritten()
    {
        AuditAnchorRecord head;
        bool needsSync;
        lock (_chain)
        {
            if (!_headLoaded || _seq == _anchoredSeq)
            {
                return;
            }
            head = _anchor;
            needsSync = _durableSeq < _seq;
        }
        if (needsSync)
        {
            try
            {
                SyncFile(head.File);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Replies already went; the log fails closed for every request from now on,
                // until an append or probe works again (and the next flush retries these).
                SetFailure(ex.Message);
                AuditLogMessages.FlushFailed(_logger, head.Seq, ex);
                return;
            }
            lock (_chain)
            {
                _durableSeq = Math.Max(_durableSeq, head.Seq);
            }
        }
        if (!_reserve.IsFull)
        {
            try
            {
                StoreAnchorAsync(head).GetAwaiter().GetResult();
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or VaultException)
            {
                // The entries are on disk; the next flush anchors past them (a log longer than
                // its anchor is not a gap).
                AuditLogMessages.AnchorFailed(_logger, head.Seq, ex);
                return;
            }
        }
        _anchoredSeq = head.Seq;
    }

    /// <summary>
    /// Fsyncs the audit file named <paramref name="file"/> while the writer may append beside:
    /// fsync is per file, not per handle, and covers every entry written before it started. A
    /// file is left only once it is durable, so the head's file holds all that is not.
    /// </summary>
    private void SyncFile(string file)
    {
        using var stream = new FileStream(System.IO.Path.Combine(_directory, file), FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 1);
        stream.Flush(flushToDisk: true);
    }
}
