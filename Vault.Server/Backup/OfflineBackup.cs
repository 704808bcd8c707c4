using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Vault.Server.Audit;
using Vault.Server.Crypto;
using Vault.Server.Hosting;
using Vault.Server.Storage;

namespace Vault.Server.Backup;

/// <summary>
/// The server binary's offline backup commands, run with no server:
/// <c>Vault.Server backup verify FILE</c> and <c>Vault.Server restore FILE --data-dir DIR</c>,
/// each with <c>--passphrase-file FILE</c> or <c>--share-file FILE</c> (repeated), else standard
/// input or a prompt. They live here because they need the store and the keyring, which vaultctl
/// never touches (its <c>operator backup verify</c> and <c>operator restore</c> run these).
/// <para>
/// Verifying installs the backup's records into a private temporary data directory, unseals the
/// keyring they hold with the secret, and then checks: the MAC over every byte of the file, the
/// counts its header gives, every record (<see cref="BackupRecordCheck"/>: each sealed record's
/// seal, each encrypted value decrypts), and the audit trail it carries against its anchor.
/// Restoring does all of that first and refuses on any failure, then installs the same records
/// and audit files into the data directory, which must be empty (a new one).
/// </para>
/// </summary>
internal static class OfflineBackup
{
    public const int Ok = 0;

    /// <summary>Could not run: usage, unreadable file, wrong secret, a data directory not empty.</summary>
    public const int Error = 2;

    /// <summary>The backup is damaged or altered.</summary>
    public const int Damaged = 4;

    private const string Usage = "usage: Vault.Server backup verify FILE [--passphrase-file F | --share-file F ...] [--json] | "
        + "Vault.Server restore FILE --data-dir DIR [--passphrase-file F | --share-file F ...] "
        + "(the passphrase or shares come from files, standard input or a prompt; never from an argument)";

    private static readonly JsonSerializerOptions JsonOptions = new(BackupFormat.Json) { WriteIndented = true };

    /// <param name="args">The arguments after <c>backup</c> or <c>restore</c>, with <paramref name="restore"/> saying which.</param>
    public static async Task<int> RunAsync(string[] args, bool restore, CancellationToken cancellationToken)
    {
        var what = restore ? "restore" : "backup verify";
        try
        {
            var request = Parse(args, restore);
            if (restore)
            {
                var (report, _) = await RestoreAsync(request.File, request.DataDir!, header => Secret(header, request), cancellationToken);
                Console.Out.WriteLine($"restored {report.Records} records and {report.AuditEntries} audit entries into {request.DataDir} "
                    + $"(backup index {report.Header.Index}, taken {report.Header.CreatedAt:u}); start the server there and unseal it");
            }
            else
            {
                var report = await VerifyAsync(request.File, header => Secret(header, request), cancellationToken);
                if (request.Json)
                {
                    Console.Out.WriteLine(JsonSerializer.Serialize(new
                    {
                        Ok = true,
                        report.Header.Index,
                        report.Header.CreatedAt,
                        report.Records,
                        report.Sealed,
                        report.Decrypted,
                        report.AuditEntries,
                        report.Header.Collections,
                    }, JsonOptions));
                }
                else
                {
                    Console.Out.WriteLine($"backup intact: index {report.Header.Index}, taken {report.Header.CreatedAt:u}; {report.Records} records "
                        + $"({report.Sealed} seals verified, {report.Decrypted} values decrypted), {report.AuditEntries} audit entries");
                }
            }
            return Ok;
        }
        catch (InvalidBackupException ex)
        {
            await Console.Error.WriteLineAsync($"vault: {what}: {ex.Message}{(restore ? "; nothing restored" : "")}");
            return Damaged;
        }
        catch (OfflineVerifyException ex)
        {
            await Console.Error.WriteLineAsync($"vault: {what}: {ex.Message}");
            return Error;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or VaultException or LiteDB.LiteException)
        {
            await Console.Error.WriteLineAsync($"vault: {what}: {OneLine(ex.Message)}");
            return Error;
        }
        catch (Exception ex)
        {
            // Whatever else a crafted file might provoke: one line, no trace.
            await Console.Error.WriteLineAsync($"vault: {what}: the backup could not be read ({ex.GetType().Name}: {OneLine(ex.Message)})");
            return Damaged;
        }
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");

    /// <summary>What a verified backup holds.</summary>
    internal sealed record Report(BackupHeader Header, long Records, long Sealed, long Decrypted, ulong AuditEntries);

    /// <summary>The unseal secret, asked for once the header says which kind the vault takes.</summary>
    internal abstract record UnsealSecret;

    internal sealed record PassphraseSecret(string Passphrase) : UnsealSecret;

    internal sealed record SharesSecret(IReadOnlyList<byte[]> Shares) : UnsealSecret;

    /// <summary>Checks the backup in <paramref name="file"/> whole; changes nothing anywhere.</summary>
    /// <exception cref="InvalidBackupException">Damaged or altered.</exception>
    /// <exception cref="OfflineVerifyException">Unreadable, or the secret does not open its keyring.</exception>
    public static async Task<Report> VerifyAsync(string file, Func<BackupHeader, UnsealSecret> secret, CancellationToken cancellationToken)
    {
        var contents = Read(file);
        var scratch = Directory.CreateTempSubdirectory("vault-backup-verify-");
        try
        {
            return await CheckAsync(contents, scratch.FullName, secret, cancellationToken);
        }
        finally
        {
            scratch.Delete(recursive: true);
        }
    }

    /// <summary>
    /// Verifies the backup and installs it as <paramref name="dataDir"/> (which must not exist or be
    /// empty). The records and audit files are installed and checked in a staging directory beside
    /// it, fsync'd, then renamed into place: the data directory holds all of it or nothing. A
    /// failure removes the staging directory; a kill leaves it (<c>.NAME.restore-*</c>), never a
    /// half-restored data directory.
    /// </summary>
    public static async Task<(Report Report, string DataDir)> RestoreAsync(string file, string dataDir, Func<BackupHeader, UnsealSecret> secret, CancellationToken cancellationToken)
    {
        var target = Path.GetFullPath(dataDir).TrimEnd(Path.DirectorySeparatorChar);
        RequireEmpty(target, "restore");
        var contents = Read(file);
        var report = await StageAsync(target, "restore", staging => CheckAsync(contents, staging, secret, cancellationToken));
        return (report, target);
    }

    /// <summary>
    /// Fills a staging directory beside <paramref name="target"/> with <paramref name="fill"/>,
    /// fsyncs it and renames it to <paramref name="target"/> (which must be missing or empty): the
    /// target holds all of it or nothing. A failure removes the staging directory.
    /// </summary>
    internal static async Task<T> StageAsync<T>(string target, string verb, Func<string, Task<T>> fill)
    {
        var parent = Path.GetDirectoryName(target) ?? throw new OfflineVerifyException($"{target} has no parent directory");
        Directory.CreateDirectory(parent);
        var staging = Path.Combine(parent, $".{Path.GetFileName(target)}.{verb}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            var result = await fill(staging);
            DirectorySync.Flush(staging);
            RequireEmpty(target, verb);
            if (Directory.Exists(target))
            {
                Directory.Delete(target);
            }
            Directory.Move(staging, target);
            DirectorySync.Flush(parent);
            return result;
        }
        catch
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
            throw;
        }
    }

    internal static void RequireEmpty(string directory, string verb)
    {
        if (Directory.Exists(directory) && Directory.EnumerateFileSystemEntries(directory).Any())
        {
            throw new OfflineVerifyException($"{directory} is not empty: {verb} only into a new, empty data directory (the server stopped)");
        }
    }

    private static BackupContents Read(string file)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OfflineVerifyException($"cannot read {file}: {ex.Message}");
        }
        return BackupContents.Parse(bytes);
    }

    /// <summary>The store's records and the audit files, each fsync'd, then the directories.</summary>
    private static void Install(BackupContents contents, string dataDir)
    {
        LiteDbStore.Install(dataDir, contents.Snapshot);
        var auditDir = Path.Combine(dataDir, "audit");
        Directory.CreateDirectory(auditDir);
        foreach (var (name, content) in contents.AuditFiles)
        {
            if (!AuditFiles.IsAuditFile(name))
            {
                throw new InvalidBackupException($"the backup is damaged: '{name}' is not an audit file's name");
            }
            using var stream = new FileStream(Path.Combine(auditDir, name), FileMode.CreateNew, FileAccess.Write);
            stream.Write(content);
            stream.Flush(flushToDisk: true);
        }
        DirectorySync.Flush(auditDir);
        DirectorySync.Flush(dataDir);
    }

    private static async Task<Report> CheckAsync(BackupContents contents, string scratch, Func<BackupHeader, UnsealSecret> secret, CancellationToken cancellationToken)
    {
        try
        {
            Install(contents, scratch);
        }
        catch (Exception ex) when (ex is not (InvalidBackupException or IOException or UnauthorizedAccessException or OperationCanceledException))
        {
            throw new InvalidBackupException($"the backup is damaged: a record is not a valid document ({ex.GetType().Name})");
        }
        LiteDbStore store;
        try
        {
            store = new LiteDbStore(scratch, NullLogger<LiteDbStore>.Instance, documentTypes: null,
                Collections.All.Concat(contents.Header.Collections.Keys).Distinct(StringComparer.Ordinal), cacheBytes: 0);
        }
        catch (Exception ex) when (ex is LiteDB.LiteException or InvalidCastException or ArgumentException or FormatException)
        {
            throw new InvalidBackupException($"the backup is damaged: its records do not open as a store ({ex.GetType().Name})");
        }
        using var owned = store;
        using var barrier = new SecurityBarrier(store, TimeProvider.System, NullLogger<SecurityBarrier>.Instance);
        if (!barrier.IsInitialized)
        {
            throw new InvalidBackupException("the backup holds no keyring");
        }
        KeyringRecord keyring;
        try
        {
            keyring = store.Get<KeyringRecord>(Collections.System, KeyringRecord.Id)!;
        }
        catch (Exception ex) when (ex is LiteDB.LiteException or InvalidCastException or ArgumentException or FormatException or NullReferenceException)
        {
            throw new InvalidBackupException($"the backup's keyring record is damaged ({ex.GetType().Name})");
        }
        if (keyring.Salt is null || keyring.WrappedKeyring is null || keyring.SecretShares != contents.Header.SecretShares || keyring.SecretThreshold != contents.Header.SecretThreshold)
        {
            throw new InvalidBackupException("the backup is damaged: its header and its keyring disagree on how the vault unseals");
        }
        await UnsealAsync(barrier, secret(contents.Header), cancellationToken);
        if (!CryptographicOperations.FixedTimeEquals(barrier.Hmac(BackupFormat.MacPurpose, contents.Digest), contents.Mac))
        {
            throw new InvalidBackupException("the backup failed its integrity check (its MAC does not match): it was altered or damaged after it was taken");
        }
        var (sealedCount, decrypted) = BackupRecordCheck.Run(store, barrier, contents.Snapshot);
        var anchor = store.Get<AuditAnchorRecord>(Collections.System, AuditAnchorRecord.Id);
        var audit = new AuditVerifier(Path.Combine(scratch, "audit"), (purpose, value) => barrier.Hmac(purpose, value)).Verify(anchor, written: null);
        if (!audit.Ok)
        {
            throw new InvalidBackupException($"the audit trail in the backup does not verify at {audit.File} line {audit.Line}: {audit.Reason}");
        }
        return new Report(contents.Header, contents.Snapshot.Documents.Count, sealedCount, decrypted, audit.EntriesChecked);
    }

    internal static async Task UnsealAsync(SecurityBarrier barrier, UnsealSecret secret, CancellationToken cancellationToken)
    {
        try
        {
            switch (secret)
            {
                case PassphraseSecret passphrase:
                    await barrier.UnsealAsync(passphrase.Passphrase, cancellationToken);
                    break;
                case SharesSecret shares:
                    foreach (var share in shares.Shares)
                    {
                        if (await barrier.UnsealWithShareAsync(share, cancellationToken))
                        {
                            return;
                        }
                    }
                    throw new OfflineVerifyException("not enough key shares given to open the backup's keyring");
            }
        }
        catch (UnauthenticatedException)
        {
            throw new OfflineVerifyException($"the {(secret is PassphraseSecret ? "passphrase" : "key shares")} given do not open the backup's keyring "
                + "(wrong, of another vault, from before a rekey — or the backup is damaged); nothing checked");
        }
        catch (ValidationException ex) when (ex.Message.StartsWith("kdf", StringComparison.Ordinal))
        {
            // The key-derivation parameters come from the keyring record: the record is damaged.
            throw new InvalidBackupException($"the backup's keyring record is damaged ({ex.Message})");
        }
        catch (ValidationException ex)
        {
            throw new OfflineVerifyException($"{ex.Message}; nothing checked");
        }
    }

    private sealed record Request(string File, string? DataDir, string? PassphraseFile, List<string> ShareFiles, bool Json);

    private static UnsealSecret Secret(BackupHeader header, Request request) =>
        Secret(header.SecretShares, header.SecretThreshold, request.PassphraseFile, request.ShareFiles);

    /// <summary>The passphrase or the shares, whichever a vault split into <paramref name="shares"/> (0: a passphrase) takes.</summary>
    internal static UnsealSecret Secret(int shares, int threshold, string? passphraseFile, List<string> shareFiles)
    {
        if (shares > 0)
        {
            if (passphraseFile is not null)
            {
                throw new OfflineVerifyException($"this vault unseals with key shares ({threshold} of {shares}): give --share-file, not a passphrase");
            }
            return new SharesSecret(OfflineInput.ReadShares(shareFiles, threshold));
        }
        if (shareFiles.Count > 0)
        {
            throw new OfflineVerifyException("this vault unseals with a passphrase: give --passphrase-file, not key shares");
        }
        return new PassphraseSecret(OfflineInput.ReadPassphrase(passphraseFile));
    }

    private static Request Parse(string[] args, bool restore)
    {
        var rest = args;
        if (!restore)
        {
            if (args is not ["verify", .. var after])
            {
                throw new OfflineVerifyException(args.Length == 0 ? $"no command given; {Usage}" : $"unknown command 'backup {args[0]}'; {Usage}");
            }
            rest = after;
        }
        string? file = null;
        string? dataDir = null;
        string? passphraseFile = null;
        var shareFiles = new List<string>();
        var json = false;
        for (var i = 0; i < rest.Length; i++)
        {
            switch (rest[i])
            {
                case "--data-dir" when restore && i + 1 < rest.Length:
                    dataDir = rest[++i];
                    break;
                case "--passphrase-file" when i + 1 < rest.Length:
                    passphraseFile = rest[++i];
                    break;
                case "--share-file" when i + 1 < rest.Length:
                    shareFiles.Add(rest[++i]);
                    break;
                case "--json" when !restore:
                    json = true;
                    break;
                case "--passphrase" or "--share":
                    throw new OfflineVerifyException("secrets are never arguments (other users can read the process list): use --passphrase-file, --share-file or standard input");
                default:
                    if (rest[i].StartsWith('-') || file is not null)
                    {
                        throw new OfflineVerifyException($"unexpected argument '{rest[i]}'; {Usage}");
                    }
                    file = rest[i];
                    break;
            }
        }
        if (file is null or "")
        {
            throw new OfflineVerifyException($"no backup file given; {Usage}");
        }
        if (restore && dataDir is null or "")
        {
            throw new OfflineVerifyException($"--data-dir is required; {Usage}");
        }
        if (passphraseFile is not null && shareFiles.Count > 0)
        {
            throw new OfflineVerifyException("give --passphrase-file or --share-file, not both");
        }
        return new Request(file, dataDir, passphraseFile, shareFiles, json);
    }
}
