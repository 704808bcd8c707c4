using System.Security.Cryptography;
using Vault.Protocol.V1;

namespace Vault.Tests.Infrastructure;

/// <summary>A vault's audit files on disk, and the server binary's offline verify over them.</summary>
public static class AuditDirectory
{
    private static readonly string LongName = new('p', 200);

    /// <summary>The audit files of the data directory (not the archived ones), oldest first.</summary>
    public static List<string> Files(string dataDir) =>
        [.. Directory.GetFiles(Path.Combine(dataDir, "audit"), "audit-*.jsonl").Order(StringComparer.Ordinal)];

    /// <summary>Writes audited requests (8 at a time, with long paths) until the log spans at least <paramref name="files"/> files.</summary>
    public static async Task FillAsync(TestVault vault, int files)
    {
        var round = 0;
        while (Files(vault.DataDir).Count < files)
        {
            round++;
            await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
                vault.Kv.PutAsync(new PutSecretRequest { Path = $"fill/{round}/{i}/{LongName}", Data = { ["v"] = "x" } }, vault.As()).ResponseAsync));
        }
    }

    /// <summary>Every file under the data directory, by relative path, with a digest of its bytes.</summary>
    public static Dictionary<string, string> Snapshot(string dataDir) =>
        Directory.GetFiles(dataDir, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(dataDir, f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));

    /// <summary>Runs <c>Vault.Server audit verify --data-dir</c> as a user would, the passphrase on standard input.</summary>
    public static Task<ExitedProcess> OfflineVerifyAsync(string dataDir, string stdin = TestVault.Passphrase + "\n", params string[] extra) =>
        VaultProcess.RunToExitWithInputAsync(new Dictionary<string, string>(), stdin: stdin, ["audit", "verify", "--data-dir", dataDir, .. extra]);
}
