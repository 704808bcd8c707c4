using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Vault.Server.Crypto;
using Vault.Server.Hosting;
using Vault.Server.Storage;

namespace Vault.Server.Audit;

/// <summary>
/// <c>Vault.Server audit verify --data-dir DIR [--passphrase-file F] [--json]</c>: verifies the
/// audit chain of a stopped vault's data directory with the operator's passphrase, with the same
/// checks as the running vault's <c>Verify</c> (<see cref="AuditVerifier"/>: the chain, the HMACs,
/// the sealed anchor, acknowledged gaps, where the kept chain begins) and the same output as
/// <c>vaultctl audit verify</c>. It lives in the server binary because it needs the store and the
/// keyring, which vaultctl never touches.
/// <para>
/// It changes nothing in the data directory. The store is opened over a private copy of its
/// files (in the system's temporary directory, deleted afterwards): opening a store replays its
/// write-ahead log into the data file, which the anchor may still be in. The audit files are only
/// read. A data directory a running server holds is refused (the server keeps a shared lock on
/// <c>vault.db</c>; this takes an exclusive one for as long as it runs), since its files change
/// under the reader: verify a running vault with <c>vaultctl audit verify</c>.
/// </para>
/// </summary>
internal static class OfflineAuditVerify
{
    /// <summary>The chain is intact.</summary>
    public const int Intact = 0;

    /// <summary>Verification could not run: usage, no such data directory, in use, wrong passphrase.</summary>
    public const int Error = 2;

    /// <summary>The chain is broken, as <c>vaultctl audit verify</c> exits for it.</summary>
    public const int Broken = 4;

    private const string Usage = "usage: Vault.Server audit verify --data-dir DIR [--passphrase-file FILE] [--json] "
        + "(the passphrase comes from FILE, from standard input when it is redirected, or from a prompt; never from an argument)";

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    /// <param name="args">The arguments after <c>audit</c>.</param>
    /// <returns>The exit code: <see cref="Intact"/>, <see cref="Broken"/> or <see cref="Error"/>.</returns>
    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        try
        {
            var (dataDir, passphraseFile, json) = Parse(args);
            var verdict = await VerifyAsync(dataDir, () => OfflineInput.ReadPassphrase(passphraseFile), cancellationToken);
            Report(verdict, json);
            return verdict.Ok ? Intact : Broken;
        }
        catch (OfflineVerifyException ex)
        {
            await Console.Error.WriteLineAsync($"vault: audit verify: {ex.Message}");
            return Error;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or VaultException or LiteDB.LiteException)
        {
            await Console.Error.WriteLineAsync($"vault: audit verify: {ex.Message}");
            return Error;
        }
    }

    /// <summary>Verifies the audit chain of the stopped vault in <paramref name="dataDir"/>, leaving the directory as it was.</summary>
    /// <param name="passphrase">Asked only once the directory is known to hold a vault no server holds.</param>
    /// <exception cref="OfflineVerifyException">No vault there, a server holds it, or the passphrase is wrong.</exception>
    public static Task<AuditVerification> VerifyAsync(string dataDir, Func<string> passphrase, CancellationToken cancellationToken) =>
        StoppedDataDirectory.ReadAsync(dataDir, "stop it first, or verify it online with `vaultctl audit verify`", async copy =>
        {
            var secret = passphrase();
            using var store = new LiteDbStore(copy, NullLogger<LiteDbStore>.Instance,
                [typeof(KeyringRecord), typeof(AuditAnchorRecord), typeof(AuditGapRecord)], Collections.All, cacheBytes: 0);
            using var barrier = new SecurityBarrier(store, TimeProvider.System, NullLogger<SecurityBarrier>.Instance);
            if (!barrier.IsInitialized)
            {
                throw new OfflineVerifyException($"the vault in {dataDir} was never initialised");
            }
            try
            {
                await barrier.UnsealAsync(secret, cancellationToken);
            }
            catch (UnauthenticatedException)
            {
                throw new OfflineVerifyException("wrong passphrase (it does not unwrap the keyring); nothing verified");
            }
            catch (ValidationException ex)
            {
                throw new OfflineVerifyException($"{ex.Message}; nothing verified");
            }
            var anchor = store.Get<AuditAnchorRecord>(Collections.System, AuditAnchorRecord.Id);
            return new AuditVerifier(Path.Combine(dataDir, "audit"), (purpose, value) => barrier.Hmac(purpose, value)).Verify(anchor, written: null);
        }, cancellationToken);

    private static (string DataDir, string? PassphraseFile, bool Json) Parse(string[] args)
    {
        if (args is not ["verify", .. var rest])
        {
            throw new OfflineVerifyException(args.Length == 0 ? $"no command given; {Usage}" : $"unknown command 'audit {args[0]}'; {Usage}");
        }
        string? dataDir = null;
        string? passphraseFile = null;
        var json = false;
        for (var i = 0; i < rest.Length; i++)
        {
            switch (rest[i])
            {
                case "--data-dir" when i + 1 < rest.Length:
                    dataDir = rest[++i];
                    break;
                case "--passphrase-file" when i + 1 < rest.Length:
                    passphraseFile = rest[++i];
                    break;
                case "--json":
                    json = true;
                    break;
                case "--passphrase":
                    throw new OfflineVerifyException("the passphrase is never an argument (other users can read the process list): use --passphrase-file or standard input");
                default:
                    throw new OfflineVerifyException($"unexpected argument '{rest[i]}'; {Usage}");
            }
        }
        return dataDir is null or "" ? throw new OfflineVerifyException($"--data-dir is required; {Usage}") : (dataDir, passphraseFile, json);
    }

    /// <summary>Prints as <c>vaultctl audit verify</c> does: a line (or JSON) on stdout, and for a broken chain one line on stderr.</summary>
    private static void Report(AuditVerification verdict, bool json)
    {
        if (json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                verdict.Ok,
                verdict.EntriesChecked,
                File = verdict.Ok || verdict.File.Length == 0 ? null : verdict.File,
                Line = verdict.Ok ? (ulong?)null : verdict.Line,
                Reason = verdict.Ok ? null : verdict.Reason,
            }, JsonOptions));
        }
        else if (verdict.Ok)
        {
            Console.Out.WriteLine($"audit log intact: {verdict.EntriesChecked} entries");
        }
        if (!verdict.Ok)
        {
            var where = verdict.File.Length > 0 ? $"{verdict.File} line {verdict.Line}" : $"entry {verdict.Line}";
            Console.Error.WriteLine($"vault: audit log broken at {where}: {verdict.Reason} ({verdict.EntriesChecked} entries before it intact)");
        }
    }
}
