using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Vault.Server.Storage;

/// <summary>
/// Space held back on the data directory's filesystem, and whether the vault has run out of it.
/// <para>
/// At start-up a file of <see cref="Bytes"/> zeros (<c>reserved-space</c>) is written and
/// fsync'd in the data directory. The first write the disk refuses for want of space — the
/// store's log, its data file or the audit log — gives that file up and puts the vault in the
/// disk-full state: the store refuses every write (<see cref="DiskFullException"/>), health says
/// NOT_SERVING, and the freed space is what the audit log needs to record the refusals and the
/// store needs to move the writes it already acknowledged into its data file. While full, the
/// store's applier calls <see cref="TryRecover"/>; once the filesystem has room for the reserve
/// and as much again, the reserve is written back and writes are taken again, without a restart.
/// </para>
/// <para>
/// Only a write refused with ENOSPC (or EDQUOT) is "disk full". A failed fsync is not: after one,
/// the kernel may have dropped the pages it could not write, so the store stops for good (see
/// <see cref="LiteDbStore"/>).
/// </para>
/// </summary>
public sealed class DiskReserve
{
    public const string FileName = "reserved-space";

    /// <summary>Default space held back: room for about 150,000 audit entries of refusals.</summary>
    public const long DefaultBytes = 64L * 1024 * 1024;

    // Never try to take the reserve back more often than this (each try may write Bytes).
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromSeconds(1);
    // What is free beside the reserve before writes resume, when the reserve itself is small.
    private const long MinimumHeadroom = 1024 * 1024;
    private const int ChunkBytes = 1024 * 1024;

    private readonly string _directory;
    private readonly string _path;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private volatile string? _failure;
    private long _lastProbe;

    /// <param name="directory">The data directory; the reserve is a file in it.</param>
    /// <param name="bytes">Space to hold back (0: none, but the disk-full state still works).</param>
    public DiskReserve(string directory, long bytes, TimeProvider clock, ILogger<DiskReserve> logger)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        _directory = directory;
        _path = Path.Combine(directory, FileName);
        Bytes = bytes;
        _clock = clock;
        _logger = logger;
    }

    /// <summary>A reserve of nothing, for a store opened on its own (tools, tests of the store alone).</summary>
    public static DiskReserve None(string directory) => new(directory, 0, TimeProvider.System, NullLogger<DiskReserve>.Instance);

    public long Bytes { get; }

    /// <summary>Why writes are refused ("disk full: …"); null while the disk has room.</summary>
    public string? Failure => _failure;

    public bool IsFull => _failure is not null;

    /// <summary>Raised with true when the disk fills, with false when writes resume.</summary>
    public event Action<bool>? FullChanged;

    /// <summary>
    /// Sets the reserve aside, at start-up, before anything else is written.
    /// </summary>
    /// <exception cref="DiskFullException">The filesystem cannot hold the reserve.</exception>
    public void Claim()
    {
        Directory.CreateDirectory(_directory);
        var existing = new FileInfo(_path);
        if (existing.Exists && existing.Length == Bytes)
        {
            return;
        }
        if (Bytes == 0)
        {
            File.Delete(_path);
            return;
        }
        try
        {
            WriteReserve();
        }
        catch (IOException ex) when (IsDiskFull(ex))
        {
            TryDelete();
            throw new DiskFullException($"disk full: {_directory} cannot hold back the {Bytes} bytes Vault:ReservedDiskBytes asks for ({FreeBytes()} bytes free); free space or lower the setting");
        }
    }

    /// <summary>
    /// The disk refused a write for want of space: the reserve is given up so that refusals can
    /// still be audited, and writes are refused until <see cref="TryRecover"/> can set it aside again.
    /// </summary>
    public void ReportFull(Exception cause)
    {
        lock (_gate)
        {
            if (_failure is not null)
            {
                return;
            }
            _failure = "disk full: the data directory's filesystem has no space left; writes are refused until space is freed, and resume by themselves";
            _lastProbe = _clock.GetTimestamp();
            TryDelete();
        }
        StoreLog.DiskFull(_logger, _directory, Bytes, cause);
        FullChanged?.Invoke(true);
    }

    /// <summary>
    /// While full, at most once a second: if the filesystem has room for the reserve and as much
    /// again, writes the reserve back and leaves the disk-full state.
    /// </summary>
    /// <returns>True when the disk is not (or no longer) full.</returns>
    public bool TryRecover()
    {
        if (_failure is null)
        {
            return true;
        }
        lock (_gate)
        {
            if (_failure is null)
            {
                return true;
            }
            if (_clock.GetElapsedTime(_lastProbe) < ProbeInterval)
            {
                return false;
            }
            _lastProbe = _clock.GetTimestamp();
            if (FreeBytes() < Bytes + Math.Max(Bytes, MinimumHeadroom))
            {
                return false;
            }
            try
            {
                if (Bytes > 0)
                {
                    WriteReserve();
                }
            }
            catch (IOException ex) when (IsDiskFull(ex))
            {
                TryDelete();
                return false;
            }
            _failure = null;
        }
        StoreLog.DiskRecovered(_logger, _directory);
        FullChanged?.Invoke(false);
        return true;
    }

    /// <summary>The error a refused write gets.</summary>
    public DiskFullException Refusal() => new(_failure ?? "disk full");

    /// <summary>Whether <paramref name="error"/> is the operating system refusing a write for want of space (ENOSPC, EDQUOT; on Windows, disk full).</summary>
    public static bool IsDiskFull(Exception error) =>
        error is IOException { HResult: var code } && (OperatingSystem.IsWindows()
            ? code is unchecked((int)0x80070070) or unchecked((int)0x80070027)
            : code is 28 or 122);

    /// <summary>Bytes an unprivileged process may still write on the data directory's filesystem.</summary>
    public long FreeBytes()
    {
        try
        {
            return new DriveInfo(_directory).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return 0;
        }
    }

    /// <summary>Zeros written and fsync'd, not a sparse file or a bare length: those hold nothing back on most filesystems.</summary>
    private void WriteReserve()
    {
        var zeros = new byte[(int)Math.Min(ChunkBytes, Bytes)];
        using var file = new FileStream(_path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1);
        for (var written = 0L; written < Bytes; written += zeros.Length)
        {
            file.Write(zeros, 0, (int)Math.Min(zeros.Length, Bytes - written));
        }
        file.Flush(flushToDisk: true);
    }

    private void TryDelete()
    {
        try
        {
            File.Delete(_path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A reserve that cannot be removed frees nothing; the refusals say so in the log.
        }
    }
}
