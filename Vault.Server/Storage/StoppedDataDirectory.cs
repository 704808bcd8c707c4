using Vault.Server.Hosting;

namespace Vault.Server.Storage;

/// <summary>
/// A stopped vault's data directory, read by the server binary's offline commands (<c>audit
/// verify</c>, <c>migrate</c>) without changing it: a server holding it is refused (it keeps a
/// shared lock on <c>vault.db</c>; this takes an exclusive one for as long as it reads, which also
/// keeps a server from starting over it), and the store is opened over a private copy of its files
/// in the system's temporary directory — opening a store replays its write-ahead log into the data
/// file, and acknowledged changes may still be only there.
/// </summary>
internal static class StoppedDataDirectory
{
    /// <param name="inUse">What to tell the operator when a server holds the directory.</param>
    /// <param name="read">Given the copy's directory (deleted afterwards).</param>
    /// <exception cref="OfflineVerifyException">No such directory, no vault in it, or a server holds it.</exception>
    public static async Task<T> ReadAsync<T>(string dataDir, string inUse, Func<string, Task<T>> read, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(dataDir))
        {
            throw new OfflineVerifyException($"data directory {dataDir} does not exist");
        }
        var dataFile = Path.Combine(dataDir, "vault.db");
        if (!File.Exists(dataFile))
        {
            throw new OfflineVerifyException($"{dataDir} holds no vault (no vault.db)");
        }
        FileStream held;
        try
        {
            held = new FileStream(dataFile, FileMode.Open, FileAccess.Read, FileShare.None);
        }
        catch (IOException)
        {
            throw new OfflineVerifyException($"{dataDir} is in use by a running server: {inUse}");
        }
        await using (held)
        {
            var copy = Directory.CreateTempSubdirectory("vault-offline-");
            try
            {
                await using (var target = new FileStream(Path.Combine(copy.FullName, "vault.db"), FileMode.CreateNew, FileAccess.Write))
                {
                    await held.CopyToAsync(target, cancellationToken);
                }
                // LiteDB's own log and the store's write-ahead log segments.
                foreach (var file in Directory.GetFiles(dataDir).Where(f => Path.GetFileName(f) is var name && (name.StartsWith("wal-", StringComparison.Ordinal) || name == "vault-log.db")))
                {
                    File.Copy(file, Path.Combine(copy.FullName, Path.GetFileName(file)));
                }
                return await read(copy.FullName);
            }
            finally
            {
                copy.Delete(recursive: true);
            }
        }
    }
}
