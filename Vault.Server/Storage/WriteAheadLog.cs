using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using LiteDB;

namespace Vault.Server.Storage;

/// <summary>One change a commit made: a document written, or (with no document) deleted.</summary>
internal readonly record struct StoreChange(string Collection, string Id, BsonDocument? Document);

/// <summary>
/// The store's redo log: each group commit is appended as one record and fsync'd before any of
/// its writes is acknowledged. LiteDB receives the changes later, in large transactions, and a
/// segment is deleted only once the data file holding everything in it has been fsync'd. On
/// start-up the segments left over are replayed into the data file.
/// <para>
/// Segments are <c>wal-NNNNNNNNNN.log</c> (ten digits) in the data directory. A record is
/// <c>[int32 length][32-byte SHA-256 of the payload][payload]</c>; the payload is the number of
/// changes, then per change its collection, id and the document's BSON (or -1 for a delete). A
/// record cut short by a crash, or whose digest does not match, ends the log: it was never
/// acknowledged, since acknowledgement follows the fsync.
/// </para>
/// </summary>
internal sealed class WriteAheadLog : IDisposable
{
    private const string Prefix = "wal-";
    private const string Suffix = ".log";
    private const int HeaderSize = 4 + 32;
    private readonly string _directory;
    private FileStream _current;
    private int _index;
    // Bytes of the segments not yet deleted, in all; of the closed ones by number (applier only);
    // of the current one (under the store's log lock).
    private long _bytes;
    private readonly Dictionary<int, long> _closedBytes = [];
    private long _currentBytes;

    private WriteAheadLog(string directory, int index)
    {
        _directory = directory;
        _index = index;
        _current = Open(index);
    }

    /// <summary>
    /// How many bytes the log holds on disk: every segment not yet deleted (what a restart would
    /// replay). The store bounds it by moving changes into the data file.
    /// </summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>The segment being appended to.</summary>
    public int CurrentSegment => _index;

    /// <summary>Starts a log whose first segment comes after any <paramref name="replayed"/>.</summary>
    public static WriteAheadLog Create(string directory, int replayed) => new(directory, replayed + 1);

    /// <summary>
    /// Reads every record of every segment in order and hands its changes to <paramref name="apply"/>.
    /// A record cut short or failing its digest is accepted only as the tail of the last segment
    /// (a crash mid-append: never acknowledged). Anywhere else it is damage that would silently
    /// drop acknowledged writes after it, so start-up is refused.
    /// </summary>
    /// <returns>The highest segment number seen (0 if none), and how many bytes of torn tail were ignored.</returns>
    /// <exception cref="IOException">A damaged record before the end of the log.</exception>
    public static (int LastSegment, long TornBytes) Replay(string directory, Action<IReadOnlyList<StoreChange>> apply)
    {
        var segments = Segments(directory);
        // Checked whole before anything is applied: damage refuses start-up with the data file untouched.
        long torn = 0;
        for (var pass = 0; pass < 2; pass++)
        {
            for (var i = 0; i < segments.Count; i++)
            {
                var path = segments[i].Path;
                var bytes = File.ReadAllBytes(path);
                var offset = 0;
                while (offset < bytes.Length)
                {
                    if (!TryRead(bytes, offset, out var payload))
                    {
                        if (i != segments.Count - 1)
                        {
                            throw new IOException($"write-ahead log segment {Path.GetFileName(path)} is damaged at byte {offset}, before the end of the log; refusing to start rather than lose the writes after it");
                        }
                        torn = bytes.Length - offset;
                        break;
                    }
                    if (pass == 1)
                    {
                        apply(Decode(payload));
                    }
                    offset += HeaderSize + payload.Length;
                }
            }
        }
        return (segments.Count == 0 ? 0 : segments[^1].Index, torn);
    }

    /// <summary>Appends one group commit and fsyncs it.</summary>
    /// <returns>Each change's document size in BSON (0 for a delete), in order: what it costs to keep.</returns>
    public int[] Append(IReadOnlyList<StoreChange> changes)
    {
        // The record is laid out in one pooled array of its exact size (header first) and written
        // once: a group of large documents costs their BSON once, not again in a growing stream,
        // its copy and the record's.
        var documents = new byte[]?[changes.Count];
        long payloadLength = 4;
        for (var i = 0; i < changes.Count; i++)
        {
            documents[i] = changes[i].Document is { } document ? BsonSerializer.Serialize(document) : null;
            payloadLength += StringSize(changes[i].Collection) + StringSize(changes[i].Id) + 4 + (documents[i]?.Length ?? 0);
        }
        var length = checked((int)payloadLength);
        var record = ArrayPool<byte>.Shared.Rent(HeaderSize + length);
        try
        {
            using (var writer = new BinaryWriter(new MemoryStream(record, HeaderSize, length, writable: true)))
            {
                writer.Write(changes.Count);
                for (var i = 0; i < changes.Count; i++)
                {
                    writer.Write(changes[i].Collection);
                    writer.Write(changes[i].Id);
                    writer.Write(documents[i]?.Length ?? -1);
                    if (documents[i] is { } bson)
                    {
                        writer.Write(bson);
                    }
                }
            }
            BinaryPrimitives.WriteInt32LittleEndian(record, length);
            SHA256.HashData(record.AsSpan(HeaderSize, length), record.AsSpan(4, 32));
            var start = _current.Length;
            try
            {
                _current.Write(record, 0, HeaderSize + length);
            }
            catch (IOException)
            {
                // Never leave a fragment for the next record to follow. The disk refused the
                // bytes (e.g. it is full): nothing of the record is in the log, and a caller may
                // go on appending once there is room.
                CutBack(start);
                throw;
            }
            var fsyncStarted = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                _current.Flush(flushToDisk: true);
            }
            catch (IOException ex)
            {
                // A failed fsync is not "no room": the kernel may have dropped pages it could not
                // write, so what the log holds is unknown. Said as a different error, whatever
                // the cause, so that no caller takes it for a refusal it can recover from.
                CutBack(start);
                throw new IOException("write-ahead log fsync failed; what reached the disk is unknown", ex);
            }
            Telemetry.ProcessMetrics.WalFsyncDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(fsyncStarted).TotalSeconds);
            Telemetry.ProcessMetrics.WalBytes.Add(HeaderSize + length);
            _currentBytes += HeaderSize + length;
            Interlocked.Add(ref _bytes, HeaderSize + length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(record);
        }
        return Array.ConvertAll(documents, bson => bson?.Length ?? 0);
    }

    /// <summary>What <see cref="BinaryWriter.Write(string)"/> takes: a 7-bit encoded byte count, then the UTF-8 bytes.</summary>
    private static int StringSize(string value)
    {
        var bytes = System.Text.Encoding.UTF8.GetByteCount(value);
        var prefix = 1;
        for (var rest = (uint)bytes >> 7; rest != 0; rest >>= 7)
        {
            prefix++;
        }
        return prefix + bytes;
    }

    /// <summary>Closes the current segment and starts the next; returns the closed segment's number.</summary>
    /// <exception cref="IOException">The next segment cannot be created; the current one stays open.</exception>
    public int Roll()
    {
        var next = Open(_index + 1);
        var closed = _index;
        _current.Dispose();
        _current = next;
        _index++;
        _closedBytes[closed] = _currentBytes;
        _currentBytes = 0;
        return closed;
    }

    private void CutBack(long length)
    {
        try
        {
            _current.SetLength(length);
        }
        catch (IOException ex)
        {
            throw new IOException("write-ahead log could not be cut back after a failed append", ex);
        }
    }

    /// <summary>Deletes every segment up to and including <paramref name="index"/>: their changes are durable in the data file.</summary>
    public void DeleteThrough(int index)
    {
        DeleteThrough(_directory, index);
        foreach (var closed in _closedBytes.Keys.Where(i => i <= index).ToList())
        {
            Interlocked.Add(ref _bytes, -_closedBytes[closed]);
            _closedBytes.Remove(closed);
        }
    }

    public static void DeleteThrough(string directory, int index)
    {
        foreach (var (i, path) in Segments(directory))
        {
            if (i <= index)
            {
                File.Delete(path);
            }
        }
    }

    public void Dispose() => _current.Dispose();

    private FileStream Open(int index) =>
        new(Path.Combine(_directory, $"{Prefix}{index:D10}{Suffix}"), FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 1);

    /// <summary>The segments, in number order (any number of digits).</summary>
    private static List<(int Index, string Path)> Segments(string directory) =>
        [.. Directory.GetFiles(directory, Prefix + "*" + Suffix)
            .Select(p => (Name: Path.GetFileName(p), Path: p))
            .Select(f => (Digits: f.Name[Prefix.Length..^Suffix.Length], f.Path))
            .Where(f => f.Digits.Length is > 0 and <= 10 && int.TryParse(f.Digits, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            .Select(f => (int.Parse(f.Digits, NumberStyles.None, CultureInfo.InvariantCulture), f.Path))
            .OrderBy(s => s.Item1)];

    private static bool TryRead(byte[] bytes, int offset, out byte[] payload)
    {
        payload = [];
        if (bytes.Length - offset < HeaderSize)
        {
            return false;
        }
        var length = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(offset));
        if (length < 0 || length > bytes.Length - offset - HeaderSize)
        {
            return false;
        }
        var body = bytes.AsSpan(offset + HeaderSize, length);
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(body, digest);
        if (!digest.SequenceEqual(bytes.AsSpan(offset + 4, 32)))
        {
            return false;
        }
        payload = body.ToArray();
        return true;
    }

    private static List<StoreChange> Decode(byte[] payload)
    {
        using var reader = new BinaryReader(new MemoryStream(payload));
        var count = reader.ReadInt32();
        var changes = new List<StoreChange>(count);
        for (var i = 0; i < count; i++)
        {
            var collection = reader.ReadString();
            var id = reader.ReadString();
            var length = reader.ReadInt32();
            changes.Add(new StoreChange(collection, id, length < 0 ? null : BsonSerializer.Deserialize(reader.ReadBytes(length))));
        }
        return changes;
    }
}
