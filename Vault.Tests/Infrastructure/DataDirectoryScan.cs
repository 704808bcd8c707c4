using System.Text;

namespace Vault.Tests.Infrastructure;

/// <summary>Greps the raw bytes of every file under a directory for plaintexts.</summary>
public static class DataDirectoryScan
{
    public static void AssertNoneAppear(string directory, IEnumerable<string> plaintexts)
    {
        var files = Directory.GetFiles(directory, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);
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
