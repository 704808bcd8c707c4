using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Vault.Server.Audit;

/// <summary>
/// Which file a path or an open handle is (device and inode) and how long it is, so a handle
/// kept open can be checked against what its path names now. Linux on x64 and Arm64 (both lay
/// out <c>struct stat</c> with <c>st_dev</c> and <c>st_ino</c> first and <c>st_size</c> at byte
/// 48, 64 bits each); elsewhere unknown, and callers reopen.
/// </summary>
internal readonly record struct FileIdentity(ulong Device, ulong Inode, long Length)
{
    // Cleared for good if libc lacks the functions (glibc before 2.33 exports only __xstat).
    private static volatile bool Supported = OperatingSystem.IsLinux()
        && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64;

    /// <summary>A path as <see cref="Of(byte[])"/> takes it: UTF-8, NUL-terminated (made once per file, not per check).</summary>
    public static byte[] NativePath(string path) => Encoding.UTF8.GetBytes(path + "\0");

    /// <summary>The file <paramref name="nativePath"/> (see <see cref="NativePath"/>) names now, or null (none, or not known here).</summary>
    public static FileIdentity? Of(byte[] nativePath) => Call(nativePath, static (path, buffer) => stat(path, buffer));

    /// <summary>The file <paramref name="handle"/> is open on, or null (not known here).</summary>
    public static FileIdentity? Of(SafeFileHandle handle) => Call(handle, static (fd, buffer) => fstat(fd, buffer));

    /// <summary>The identity <paramref name="call"/> reads (a static function: nothing allocated per check), or null; no more calls where libc lacks the function.</summary>
    private static FileIdentity? Call<T>(T target, Func<T, byte[], int> call)
    {
        if (!Supported)
        {
            return null;
        }
        var buffer = _buffer ??= new byte[StatBytes];
        try
        {
            return call(target, buffer) == 0 ? Read(buffer) : null;
        }
        catch (Exception ex) when (ex is EntryPointNotFoundException or DllNotFoundException)
        {
            Supported = false;
            return null;
        }
    }

    // One per thread, read before the call returns: no allocation per check.
    [ThreadStatic]
    private static byte[]? _buffer;

    // sizeof(struct stat) is 144 on x64 and 128 on Arm64; room for either.
    private const int StatBytes = 256;

    private static FileIdentity Read(byte[] stat) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(stat),
        BinaryPrimitives.ReadUInt64LittleEndian(stat.AsSpan(8)),
        BinaryPrimitives.ReadInt64LittleEndian(stat.AsSpan(48)));

    // DllImport, not LibraryImport (as in DirectorySync): no unsafe code in the assembly.
    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int stat(byte[] path, byte[] buffer);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int fstat(SafeFileHandle fd, byte[] buffer);
}
