using System.Diagnostics;

namespace Vault.Tests.Infrastructure;

/// <summary>
/// A tmpfs of a few MiB mounted on a fresh directory: a real filesystem that fills up and
/// answers ENOSPC, for the disk-full tests. Mounting needs root, as the tests run on CI; anywhere
/// else the test fails saying so. <see cref="Dispose"/> unmounts it.
/// </summary>
public sealed class SmallFilesystem : IDisposable
{
    private const int ChunkBytes = 64 * 1024;

    private SmallFilesystem(string path) => Path = path;

    /// <summary>Where it is mounted.</summary>
    public string Path { get; }

    private string FillerPath => System.IO.Path.Combine(Path, "filler");

    /// <summary>Bytes still free.</summary>
    public long FreeBytes => new DriveInfo(Path).AvailableFreeSpace;

    public static SmallFilesystem Mount(long bytes)
    {
        var path = Directory.CreateTempSubdirectory("vault-small-fs-").FullName;
        var (exit, output) = Run("mount", "-t", "tmpfs", "-o", $"size={bytes},mode=0700", "tmpfs", path);
        if (exit != 0)
        {
            Directory.Delete(path);
            throw new InvalidOperationException(
                $"mounting a {bytes}-byte tmpfs on {path} failed ({output.Trim()}): the disk-full tests need root, as on CI (run `sudo scripts/test.sh`)");
        }
        return new SmallFilesystem(path);
    }

    /// <summary>Writes a filler file until the filesystem refuses more: the disk is then full.</summary>
    public void Fill()
    {
        var chunk = new byte[ChunkBytes];
        Random.Shared.NextBytes(chunk);
        using var filler = new FileStream(FillerPath, FileMode.Append, FileAccess.Write, FileShare.None, bufferSize: 1);
        try
        {
            while (true)
            {
                filler.Write(chunk);
            }
        }
        catch (IOException ex) when (ex.HResult == 28)
        {
            // ENOSPC, partway through a chunk perhaps: the bytes that fitted stay.
        }
        // Pages freed since (a file deleted by the server) are filled too, one byte at a time if need be.
        for (var size = ChunkBytes / 2; size > 0; size /= 2)
        {
            try
            {
                while (true)
                {
                    filler.Write(chunk, 0, size);
                }
            }
            catch (IOException ex) when (ex.HResult == 28)
            {
            }
        }
    }

    /// <summary>Deletes the filler: the space it took is free again.</summary>
    public void Free() => File.Delete(FillerPath);

    public void Dispose()
    {
        Run("umount", "-l", Path);
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a unique temp directory.
        }
    }

    private static (int Exit, string Output) Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not run {file}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }
}
