namespace Vault.Server.Storage;

/// <summary>
/// A file stream whose <see cref="Flush"/> reaches the disk (fsync). LiteDB flushes but never
/// asks the operating system to persist, so an acknowledged write could otherwise vanish with
/// the machine. When <see cref="BeforeTruncate"/> is set (the log file), truncation first makes
/// the data file durable: LiteDB shrinks its log right after a checkpoint copied it.
/// </summary>
internal sealed class DurableFileStream(string path) : Stream
{
    private readonly FileStream _inner = new(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 1, FileOptions.RandomAccess);

    private bool _disposed;

    public Action? BeforeTruncate { get; set; }

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => true;
    public override long Length => _inner.Length;

    public override long Position
    {
        get => _inner.Position;
        set => _inner.Position = value;
    }

    public override void Flush()
    {
        if (!_disposed)
        {
            _inner.Flush(flushToDisk: true);
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);

    public override long Seek(long offset, SeekOrigin origin) => _inner.Seek(offset, origin);

    public override void SetLength(long value)
    {
        if (value < _inner.Length)
        {
            BeforeTruncate?.Invoke();
        }
        _inner.SetLength(value);
        _inner.Flush(flushToDisk: true);
    }

    public override void Write(byte[] buffer, int offset, int count) => _inner.Write(buffer, offset, count);

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _inner.Flush(flushToDisk: true);
            _inner.Dispose();
            _disposed = true;
        }
        base.Dispose(disposing);
    }
}
