using System.Text;
using System.Text.Json;
using Vault.Protocol.V1;
using Vault.Tests.Cli;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Backup;

/// <summary>
/// Online backups as an operator takes and uses them: <c>vaultctl operator backup</c> against a
/// running vault under write load, <c>operator backup verify</c> and <c>operator restore</c>
/// offline (they run the server binary), and a vault started on the restored directory.
/// </summary>
public sealed class BackupTests : IDisposable
{
    private const int Writers = 4;
    private const int KeysPerWriter = 25;
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("vault-backup-test-");

    public void Dispose() => _work.Delete(recursive: true);

    [Fact]
    public async Task ABackupUnderConcurrentWriters_RestoresEveryWriteAcknowledgedBeforeIt_NoneAfterItOrHalfThere_AndItsAuditVerifies()
    {
        var backup = Path.Combine(_work.FullName, "vault.bak");
        var restored = Path.Combine(_work.FullName, "restored");
        var passphraseFile = PassphraseFile();
        int[] ackedBefore;
        int[] startedAfter;
        string rootToken;
        await using (var vault = await TestVault.StartInitializedAsync())
        {
            rootToken = vault.RootToken;
            var cli = new VaultCtl(vault.Address, vault.RootToken);
            // Each writer overwrites its own keys in turn (k(i mod 25) = i): every put writes the
            // metadata and a new version, and past ten versions deletes the oldest, in one unit.
            var acked = new int[Writers];
            var started = new int[Writers];
            using var stop = new CancellationTokenSource();
            var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
            {
                for (var i = 0; !stop.IsCancellationRequested; i++)
                {
                    Volatile.Write(ref started[w], i + 1);
                    await vault.Kv.PutAsync(new PutSecretRequest { Path = Key(w, i), Data = { ["i"] = i.ToString() } }, vault.As());
                    Volatile.Write(ref acked[w], i + 1);
                }
            })).ToArray();
            await WaitUntil(() => acked.All(a => a >= 3 * KeysPerWriter), writers);

            ackedBefore = Enumerable.Range(0, Writers).Select(w => Volatile.Read(ref acked[w])).ToArray();
            var taken = await cli.RunAsync("operator", "backup", backup);
            // Every put in the backup had started by now: an upper bound on what it can hold.
            startedAfter = Enumerable.Range(0, Writers).Select(w => Volatile.Read(ref started[w])).ToArray();
            taken.Ok();
            Assert.Contains("Index", taken.StdOut, StringComparison.Ordinal);
            await stop.CancelAsync();
            await Task.WhenAll(writers.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));
            // The request is audited like any other.
            var audit = await new AuditService.AuditServiceClient(vault.Channel).TailAsync(new TailAuditRequest { Rpc = "vault.v1.SystemService/Backup" }, vault.As());
            Assert.Contains(audit.Entries, e => e.Rpc == "vault.v1.SystemService/Backup" && e.Path == "sys/backup" && e.Outcome == "ok");
        }

        var offline = new VaultCtl("http://127.0.0.1:1");
        var verified = (await offline.RunAsync("operator", "backup", "verify", backup, "--passphrase-file", passphraseFile)).Ok();
        Assert.StartsWith("backup intact: index ", verified, StringComparison.Ordinal);
        (await offline.RunAsync("operator", "restore", backup, "--data-dir", restored, "--passphrase-file", passphraseFile)).Ok();

        await using var back = await TestVault.OpenAsync(restored, rootToken);
        await back.UnsealAsync();
        for (var w = 0; w < Writers; w++)
        {
            // The writer's puts in the backup are a prefix 0..m-1 of the ones it made: every key
            // holds the last value of that prefix, with its versions, and reads whole.
            var values = new int[KeysPerWriter];
            for (var k = 0; k < KeysPerWriter; k++)
            {
                var secret = await back.Kv.GetAsync(new GetSecretRequest { Path = $"w{w}/k{k:D2}" }, back.As());
                values[k] = int.Parse(secret.Data["i"]);
                var metadata = await back.Kv.GetMetadataAsync(new GetMetadataRequest { Path = $"w{w}/k{k:D2}" }, back.As());
                Assert.Equal((ulong)(values[k] / KeysPerWriter + 1), metadata.CurrentVersion);
                foreach (var version in metadata.Versions.Where(v => !v.Destroyed))
                {
                    var old = await back.Kv.GetAsync(new GetSecretRequest { Path = $"w{w}/k{k:D2}", Version = version.Version }, back.As());
                    Assert.Equal(((long)version.Version - 1) * KeysPerWriter + k, int.Parse(old.Data["i"]));
                }
            }
            var m = values.Max() + 1;
            Assert.True(m >= ackedBefore[w], $"writer {w}: {ackedBefore[w]} puts were acknowledged before the backup, but only {m} are in it");
            Assert.True(m <= startedAfter[w], $"writer {w}: {m} puts are in the backup, but only {startedAfter[w]} had started when it ended");
            for (var k = 0; k < KeysPerWriter; k++)
            {
                var last = m - 1 - ((m - 1 - k) % KeysPerWriter + KeysPerWriter) % KeysPerWriter;
                Assert.Equal(last, values[k]);
            }
        }
        var restoredCli = new VaultCtl(back.Address, rootToken);
        Assert.Contains("audit log intact", (await restoredCli.RunAsync("audit", "verify")).Ok(), StringComparison.Ordinal);
        // The restored vault takes writes, which go on the restored trail.
        await back.Kv.PutAsync(new PutSecretRequest { Path = "after/restore", Data = { ["v"] = "1" } }, back.As());
        await back.RestartAsync();
        await back.UnsealAsync();
        Assert.Equal("1", (await back.Kv.GetAsync(new GetSecretRequest { Path = "after/restore" }, back.As())).Data["v"]);
        Assert.Contains("audit log intact", (await new VaultCtl(back.Address, rootToken).RunAsync("audit", "verify")).Ok(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ABackupWithOneByteFlipped_FailsVerifyAndRestore_WhereverTheByteIs()
    {
        var backup = Path.Combine(_work.FullName, "vault.bak");
        var passphraseFile = PassphraseFile();
        await using (var vault = await TestVault.StartInitializedAsync())
        {
            await vault.Kv.PutAsync(new PutSecretRequest { Path = "app/db", Data = { ["password"] = "hunter2-but-longer" } }, vault.As());
            await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "reader", Rules = { new PolicyRule { Path = "kv/app/*", Capabilities = { "read" } } } } }, vault.As());
            await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "reader" }, Ttl = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromHours(1)) }, vault.As());
            (await new VaultCtl(vault.Address, vault.RootToken).RunAsync("operator", "backup", backup)).Ok();
        }
        var offline = new VaultCtl("http://127.0.0.1:1");
        Assert.StartsWith("backup intact", (await offline.RunAsync("operator", "backup", "verify", backup, "--passphrase-file", passphraseFile)).Ok(), StringComparison.Ordinal);
        var original = await File.ReadAllBytesAsync(backup);
        // The magic, the header, records spread over the file, the audit trail near the end, the MAC.
        var positions = new[] { 3, 20 }.Concat(Enumerable.Range(1, 12).Select(i => (int)((long)original.Length * i / 14))).Append(original.Length - 40).Append(original.Length - 1).Distinct().ToList();
        var restores = 0;
        foreach (var position in positions)
        {
            var flipped = original.ToArray();
            flipped[position] ^= 0x01;
            var file = Path.Combine(_work.FullName, $"flipped-{position}.bak");
            await File.WriteAllBytesAsync(file, flipped);

            var verify = await offline.RunAsync("operator", "backup", "verify", file, "--passphrase-file", passphraseFile);
            Assert.True(verify.ExitCode != 0, $"a byte flipped at {position} of {original.Length} passed verify: {verify.StdOut}");
            AssertRefusal(verify, position);
            if (position % 3 == 0 || restores < 3)
            {
                restores++;
                var into = Path.Combine(_work.FullName, $"restore-{position}");
                var restore = await offline.RunAsync("operator", "restore", file, "--data-dir", into, "--passphrase-file", passphraseFile);
                Assert.True(restore.ExitCode != 0, $"a byte flipped at {position} was restored");
                AssertRefusal(restore, position);
                Assert.True(!Directory.Exists(into) || !Directory.EnumerateFileSystemEntries(into).Any(), $"restore of a damaged backup wrote into {into}");
                Assert.DoesNotContain(Directory.GetDirectories(_work.FullName), d => Path.GetFileName(d).Contains(".restore-", StringComparison.Ordinal));
            }
        }
    }

    [Fact]
    public async Task AKeyShareVaultsBackup_HoldsNoShareTokenOrSecret_AndVerifiesAndRestoresOnlyWithAQuorum()
    {
        const string SecretValue = "the-database-password-7f3a9c";
        var backup = Path.Combine(_work.FullName, "vault.bak");
        var restored = Path.Combine(_work.FullName, "restored");
        InitResponse init;
        string childToken;
        string childAccessor;
        await using (var vault = await TestVault.StartAsync())
        {
            init = await vault.System.InitAsync(new InitRequest { SecretShares = 5, SecretThreshold = 3 });
            foreach (var share in init.Shares.Take(3))
            {
                await vault.System.UnsealAsync(new UnsealRequest { Share = share });
            }
            await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "reader", Rules = { new PolicyRule { Path = "kv/app/*", Capabilities = { "read" } } } } }, vault.As(init.RootToken));
            await vault.Kv.PutAsync(new PutSecretRequest { Path = "app/db", Data = { ["password"] = SecretValue } }, vault.As(init.RootToken));
            var child = await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "reader" } }, vault.As(init.RootToken));
            childToken = child.Token;
            childAccessor = child.Info.Accessor;
            (await new VaultCtl(vault.Address, init.RootToken).RunAsync("operator", "backup", backup)).Ok();
        }

        // Leak scan: the file is ciphertext and metadata; its header says where it stands and nothing else.
        var bytes = await File.ReadAllBytesAsync(backup);
        var text = Encoding.UTF8.GetString(bytes);
        foreach (var secret in init.Shares.Append(init.RootToken).Append(childToken).Append(SecretValue))
        {
            Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
        }
        foreach (var share in init.Shares)
        {
            Assert.True(bytes.AsSpan().IndexOf(Convert.FromBase64String(share)) < 0, "a share's bytes are in the backup");
        }
        var header = ReadHeader(bytes);
        Assert.Equal(["audit_files", "audit_through", "collections", "created_at", "format", "index", "records", "secret_shares", "secret_threshold"],
            header.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(3, header.GetProperty("secret_threshold").GetInt32());

        var shareFiles = init.Shares.Select((share, i) =>
        {
            var path = Path.Combine(_work.FullName, $"share-{i}");
            File.WriteAllText(path, share + "\n");
            return path;
        }).ToArray();
        var offline = new VaultCtl("http://127.0.0.1:1");
        (await offline.RunAsync("operator", "backup", "verify", backup, "--share-file", shareFiles[0], "--share-file", shareFiles[3]))
            .OneLineError(1, "2 key shares given; this vault needs 3");
        (await offline.RunAsync("operator", "backup", "verify", backup, "--passphrase-file", PassphraseFile()))
            .OneLineError(1, "this vault unseals with key shares (3 of 5)");
        (await offline.RunAsync("operator", "restore", backup, "--data-dir", restored, "--share-file", shareFiles[1]))
            .OneLineError(1, "1 key shares given; this vault needs 3");
        Assert.False(Directory.Exists(restored));
        Assert.StartsWith("backup intact", (await offline.RunAsync("operator", "backup", "verify", backup, "--share-file", shareFiles[4], "--share-file", shareFiles[2], "--share-file", shareFiles[0])).Ok(), StringComparison.Ordinal);
        // Shares on standard input, a line each, as with unseal.
        Assert.StartsWith("restored ", (await offline.RunWithInputAsync($"{init.Shares[1]}\n{init.Shares[3]}\n{init.Shares[4]}\n", "operator", "restore", backup, "--data-dir", restored)).Ok(), StringComparison.Ordinal);

        await using var back = await TestVault.OpenAsync(restored, init.RootToken);
        foreach (var share in init.Shares.Skip(2))
        {
            await back.System.UnsealAsync(new UnsealRequest { Share = share });
        }
        Assert.Equal(SecretValue, (await back.Kv.GetAsync(new GetSecretRequest { Path = "app/db" }, back.As())).Data["password"]);
        Assert.Equal(["reader"], (await back.Tokens.LookupAsync(new LookupTokenRequest { Accessor = childAccessor }, back.As())).Policies);
        // Restoring again over it is refused: only an empty directory.
        (await offline.RunAsync("operator", "restore", backup, "--data-dir", restored, "--share-file", shareFiles[0], "--share-file", shareFiles[1], "--share-file", shareFiles[2]))
            .OneLineError(1, "is not empty");
    }

    private static void AssertRefusal(CliResult result, int position)
    {
        // Damage is exit 4; a flip inside the keyring record cannot be told from a wrong passphrase (exit 1), and says so.
        if (result.ExitCode == 4)
        {
            result.OneLineError(4, "");
            Assert.Contains("backup", result.StdErr, StringComparison.Ordinal);
        }
        else
        {
            var line = result.OneLineError(1, "do not open the backup's keyring");
            Assert.Contains("or the backup is damaged", line, StringComparison.Ordinal);
        }
        Assert.DoesNotContain(TestVault.Passphrase, result.StdErr, StringComparison.Ordinal);
        _ = position;
    }

    private static JsonElement ReadHeader(byte[] file)
    {
        using var reader = new BinaryReader(new MemoryStream(file), Encoding.UTF8);
        Assert.Equal("VAULTBAK"u8.ToArray(), reader.ReadBytes(8));
        Assert.Equal(1, reader.ReadInt32());
        using var document = JsonDocument.Parse(reader.ReadString());
        return document.RootElement.Clone();
    }

    private string PassphraseFile()
    {
        var path = Path.Combine(_work.FullName, "passphrase");
        File.WriteAllText(path, TestVault.Passphrase + "\n");
        return path;
    }

    private static string Key(int writer, int i) => $"w{writer}/k{i % KeysPerWriter:D2}";

    private static async Task WaitUntil(Func<bool> done, Task[] writers)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!done())
        {
            if (writers.FirstOrDefault(t => t.IsFaulted) is { } failed)
            {
                await failed;
            }
            Assert.True(DateTime.UtcNow < deadline, "the writers did not get far enough in 60 s");
            await Task.Delay(20);
        }
    }
}
