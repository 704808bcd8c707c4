using System.Text;

namespace Vault.Tests.Infrastructure;

/// <summary>Greps the raw bytes of every file under a directory for plaintexts.</summary>
public static class DataDirectoryScan
{
    /// <remarks>
    /// The vault may be running: a write-ahead-log segment or an audit file listed here can be
    /// applied and deleted before it is read. A file that is gone holds nothing any more, so it is
    /// skipped (two full-suite runs failed on exactly that, a FileNotFoundException on a
    /// wal-*.log); every file that exists when it is read is scanned.
    /// </remarks>
    public static void AssertNoneAppear(string directory, IEnumerable<string> plaintexts)
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var file in Directory.GetFiles(directory, "*", SearchOption.AllDirectories))
        {
            try
            {
                files[file] = File.ReadAllBytes(file);
            }
            catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
            {
            }
        }
        Assert.NotEmpty(files);
        foreach (var secret in plaintexts)
        {
            foreach (var encoding in new Encoding[] { Encoding.UTF8, Encoding.Unicode })
            {
                var needle = encoding.GetBytes(secret);
                foreach (var (file, bytes) in files)
                {
                    Assert.False(bytes.AsSpan().IndexOf(needle) >= 0, $"a plaintext secret appears in {file}");
                }
            }
        }
    }
}
