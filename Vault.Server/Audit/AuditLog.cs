using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Vault.Server.Crypto;
using Vault.Server.Hosting;

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
/// deletion, reordering or forged line breaks it. One writer appends; a request is answered
/// only after its entry is written and fsync'd, and fails closed when that is impossible.
/// </summary>
public sealed class AuditLog : IAsyncDisposable
{
    public const string HmacPurpose = "audit";
    private const string FilePrefix = "audit-";
    private const string FileSuffix = ".jsonl";
    private readonly System.Collections.Concurrent.BlockingCollection<Pending> _queue = new();
    // Guards the chain head (_seq, _prevHash, _fileIndex, _headLoaded) between the writer and Verify.
    private readonly Lock _chain = new();
    private readonly SecurityBarrier _barrier;
    private readonly TimeProvider _clock;
    private readonly ILogger<AuditLog> _logger;
    private readonly string _directory;
    private readonly long _maxFileBytes;
    private readonly AuditFlush _flush;
    private readonly Thread _writer;
    private ulong _seq;
    private string _prevHash = "";
    private int _fileIndex;
    private bool _headLoaded;
    private volatile string? _failure;

    public AuditLog(IOptions<VaultServerOptions> options, SecurityBarrier barrier, TimeProvider clock, ILogger<AuditLog> logger)
    {
        _barrier = barrier;
        _clock = clock;
        _logger = logger;
        var o = options.Value;
        _directory = System.IO.Path.Combine(o.DataDir!, "audit");
        _maxFileBytes = o.AuditMaxFileBytes;
        _flush = o.AuditFlush;
        Directory.CreateDirectory(_directory);
        // A thread of its own: each group blocks in fsync, which must not hold a pool thread.
        _writer = new Thread(WriterLoop) { Name = "vault-audit-writer", IsBackground = true };
        _writer.Start();
    }

    /// <summary>Raised when the log starts or stops failing, with the new failing flag.</summary>
    public event Action<bool>? FailingChanged;

    /// <summary>Why the last append failed, or null while the log is healthy.</summary>
    public string? Failure => _failure;

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

    /// <summary>The audit files, oldest first.</summary>
    public IReadOnlyList<string> Files() =>
        Directory.GetFiles(_directory, FilePrefix + "*" + FileSuffix)
            .Where(f => System.IO.Path.GetFileName(f) is var name
                && name.Length == FilePrefix.Length + 6 + FileSuffix.Length
                && name.AsSpan(FilePrefix.Length, 6).ContainsAnyExceptInRange('0', '9') is false)
            .Order(StringComparer.Ordinal)
            .ToList();

    /// <summary>Every entry, oldest first; lines that do not parse are skipped.</summary>
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

    /// <summary>Walks the chain from the first entry and reports the first one that is wrong.</summary>
    public AuditVerification Verify()
    {
        // Entries up to this one were completely written and fsync'd before we start reading;
        // a line after them that does not parse may be a group still being written.
        ulong written;
        bool headKnown;
        lock (_chain)
        {
            written = _seq;
            headKnown = _headLoaded;
        }
        ulong expectedSeq = 1;
        var prev = "";
        ulong checkedCount = 0;
        foreach (var file in Files())
        {
            var lineNumber = 0UL;
            foreach (var line in File.ReadLines(file))
            {
                lineNumber++;
                var name = System.IO.Path.GetFileName(file);
                AuditLine? entry;
                try
                {
                    entry = JsonSerializer.Deserialize(line, AuditJson.Default.AuditLine);
                }
                catch (JsonException)
                {
                    if (headKnown && checkedCount >= written)
                    {
                        // Past every entry known to be complete: a group still being written.
                        return AuditVerification.Intact(checkedCount);
                    }
                    return AuditVerification.Broken(checkedCount, name, lineNumber, "not a valid entry (edited or truncated)");
                }
                if (entry?.Hash is null)
                {
                    return AuditVerification.Broken(checkedCount, name, lineNumber, "not a valid entry (no hash)");
                }
                if (entry.Seq != expectedSeq)
                {
                    return AuditVerification.Broken(checkedCount, name, lineNumber,
                        entry.Seq > expectedSeq ? $"entry {expectedSeq} is missing (found {entry.Seq}): deleted or reordered" : $"entry {entry.Seq} appears again or out of order (expected {expectedSeq})");
                }
                if (entry.PrevHash != prev)
                {
                    return AuditVerification.Broken(checkedCount, name, lineNumber, "does not chain to the entry before it");
                }
                if (ComputeHash(entry) != entry.Hash || JsonSerializer.Serialize(entry, AuditJson.Default.AuditLine) != line)
                {
                    return AuditVerification.Broken(checkedCount, name, lineNumber, "hash does not match its content: edited or forged");
                }
                prev = entry.Hash;
                expectedSeq++;
                checkedCount++;
            }
        }
        if (headKnown && checkedCount < written)
        {
            var files = Files();
            return AuditVerification.Broken(checkedCount, files.Count == 0 ? "" : System.IO.Path.GetFileName(files[^1]), checkedCount + 1,
                $"log ends at entry {checkedCount} but {written} were written: truncated");
        }
        return AuditVerification.Intact(checkedCount);
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

    private string ComputeHash(AuditLine entry)
    {
        var hash = entry.Hash;
        entry.Hash = null;
        try
        {
            var canonical = JsonSerializer.SerializeToUtf8Bytes(entry, AuditJson.Default.AuditLine);
            return Convert.ToHexStringLower(_barrier.Hmac(HmacPurpose, canonical));
        }
        finally
        {
            entry.Hash = hash;
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
                WriteGroup(group);
                SetFailure(null);
                foreach (var pending in group)
                {
                    pending.Done.TrySetResult();
                }
            }
            catch (VaultSealedException ex)
            {
                // Sealed while the entries waited: the key to chain them is gone. Not an audit
                // failure; the requests fail as sealed.
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

    private void WriteGroup(List<Pending> group)
    {
        lock (_chain)
        {
            LoadHead();
            var seq = _seq;
            var prev = _prevHash;
            using var text = new MemoryStream();
            foreach (var pending in group)
            {
                if (pending.Event is not { } e)
                {
                    continue;
                }
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
        }
    }

    private string CurrentFile() => System.IO.Path.Combine(_directory, $"{FilePrefix}{_fileIndex:D6}{FileSuffix}");

    /// <summary>Picks up the chain where the last run left it: the newest file's last entry.</summary>
    private void LoadHead()
    {
        if (_headLoaded)
        {
            return;
        }
        var files = Files();
        _fileIndex = 1;
        if (files.Count > 0)
        {
            var newest = files[^1];
            CutTornTail(newest);
            _fileIndex = int.Parse(System.IO.Path.GetFileName(newest)[FilePrefix.Length..^FileSuffix.Length], CultureInfo.InvariantCulture);
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
            FailingChanged?.Invoke(failure is not null);
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

internal static partial class AuditLogMessages
{
    [LoggerMessage(5002, LogLevel.Warning, "Audit file {File} ended in an unfinished entry ({Bytes} bytes, never acknowledged); cut off")]
    public static partial void TornTailCut(ILogger logger, string file, long bytes);

    [LoggerMessage(5001, LogLevel.Critical, "Audit log cannot be written; failing closed for {Count} requests")]
    public static partial void AppendFailed(ILogger logger, int count, Exception exception);
}
