using System.Text.Json;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Audit;

/// <summary>
/// <c>Vault.Server audit verify --data-dir DIR</c>: the audit chain of a stopped vault, verified
/// with the passphrase by the real server binary, with the checks and the output of the online
/// verify, and without changing a byte of the data directory.
/// </summary>
public sealed class OfflineAuditVerifyTests
{
    public static TheoryData<string> Breakages => new() { "cut-tail", "delete-newest-file", "tampered-line" };

    private static AuditService.AuditServiceClient Audit(TestVault vault) => new(vault.Channel);

    /// <summary>Asserts a refusal: the exit code, nothing on stdout, one 'vault: audit verify: ...' line on stderr.</summary>
    private static void AssertOneLineError(ExitedProcess run, int exitCode, string contains)
    {
        Assert.True(run.ExitCode == exitCode, $"exit {run.ExitCode}; stdout: {run.Stdout}; stderr: {run.Stderr}");
        Assert.Equal("", run.Stdout);
        var line = run.Stderr.TrimEnd('\n');
        Assert.DoesNotContain('\n', line);
        Assert.DoesNotContain("   at ", run.Stderr, StringComparison.Ordinal);
        Assert.StartsWith("vault: audit verify: ", line, StringComparison.Ordinal);
        Assert.Contains(contains, line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnUntouchedStoppedVault_IsIntact_WithEveryEntryCounted_AndItsDataDirectoryIsUnchanged()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        for (var i = 0; i < 12; i++)
        {
            await vault.Kv.PutAsync(new PutSecretRequest { Path = $"offline/{i}", Data = { ["v"] = "x" } }, vault.As());
        }
        var online = await Audit(vault).VerifyAsync(new VerifyAuditRequest(), vault.As());
        Assert.True(online.Ok, online.Reason);

        await vault.RestartAsync(async () =>
        {
            var before = AuditDirectory.Snapshot(vault.DataDir);
            var human = await AuditDirectory.OfflineVerifyAsync(vault.DataDir);
            var json = await AuditDirectory.OfflineVerifyAsync(vault.DataDir, stdin: TestVault.Passphrase + "\n", "--json");
            var fromFile = Path.GetTempFileName();
            await File.WriteAllTextAsync(fromFile, TestVault.Passphrase + "\n");
            ExitedProcess withFile;
            try
            {
                withFile = await AuditDirectory.OfflineVerifyAsync(vault.DataDir, stdin: "", "--passphrase-file", fromFile);
            }
            finally
            {
                File.Delete(fromFile);
            }

            // The online verify's own entry came after it counted: offline sees one more.
            var expected = online.EntriesChecked + 1;
            Assert.True(human.ExitCode == 0, human.Stderr);
            Assert.Equal($"audit log intact: {expected} entries\n", human.Stdout);
            Assert.Equal("", human.Stderr);
            Assert.Equal(human.Stdout, withFile.Stdout);
            Assert.Equal(0, json.ExitCode);
            using var document = JsonDocument.Parse(json.Stdout);
            Assert.True(document.RootElement.GetProperty("ok").GetBoolean());
            Assert.Equal(expected, document.RootElement.GetProperty("entries_checked").GetUInt64());
            Assert.False(document.RootElement.TryGetProperty("file", out _));
            Assert.Equal(before, AuditDirectory.Snapshot(vault.DataDir));
        });
    }

    [Theory]
    [MemberData(nameof(Breakages))]
    public async Task ABrokenChain_Exits4_NamingTheFirstBadEntry_AsTheOnlineVerifyDoes(string breakage)
    {
        // Small files, so that the newest file is not the whole log.
        await using var vault = await TestVault.StartInitializedAsync("--Vault:AuditMaxFileBytes=65536");
        await AuditDirectory.FillAsync(vault, files: 2);
        // The newest file has just begun: give it lines to cut.
        for (var i = 0; i < 4; i++)
        {
            await vault.Kv.PutAsync(new PutSecretRequest { Path = $"offline/{breakage}/{i}", Data = { ["v"] = "x" } }, vault.As());
        }
        string expectedWhere = "";
        string expectedReason = "";

        await vault.RestartAsync(async () =>
        {
            var files = AuditDirectory.Files(vault.DataDir);
            switch (breakage)
            {
                case "cut-tail":
                    var lines = File.ReadAllLines(files[^1]).ToList();
                    lines.RemoveRange(lines.Count - 2, 2);
                    File.WriteAllLines(files[^1], lines);
                    expectedWhere = $"{Path.GetFileName(files[^1])} line {lines.Count + 1}: ";
                    expectedReason = "are missing (cut or deleted)";
                    break;
                case "delete-newest-file":
                    File.Delete(files[^1]);
                    expectedWhere = $"{Path.GetFileName(files[^1])} line 0: ";
                    expectedReason = "are missing (cut or deleted)";
                    break;
                case "tampered-line":
                    var kept = File.ReadAllLines(files[0]);
                    var edited = kept[3].Replace("\"path\":\"kv/", "\"path\":\"Kv/", StringComparison.Ordinal);
                    Assert.NotEqual(kept[3], edited);
                    kept[3] = edited;
                    File.WriteAllLines(files[0], kept);
                    expectedWhere = $"{Path.GetFileName(files[0])} line 4: ";
                    expectedReason = "edited or forged";
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(breakage), breakage, "unknown breakage");
            }
            var before = AuditDirectory.Snapshot(vault.DataDir);

            var human = await AuditDirectory.OfflineVerifyAsync(vault.DataDir);
            var json = await AuditDirectory.OfflineVerifyAsync(vault.DataDir, stdin: TestVault.Passphrase + "\n", "--json");

            Assert.True(human.ExitCode == 4, $"exit {human.ExitCode}; stdout: {human.Stdout}; stderr: {human.Stderr}");
            Assert.Equal("", human.Stdout);
            var line = human.Stderr.TrimEnd('\n');
            Assert.DoesNotContain('\n', line);
            Assert.StartsWith($"vault: audit log broken at {expectedWhere}", line, StringComparison.Ordinal);
            Assert.Contains(expectedReason, line, StringComparison.Ordinal);
            Assert.Equal(4, json.ExitCode);
            using var document = JsonDocument.Parse(json.Stdout);
            Assert.False(document.RootElement.GetProperty("ok").GetBoolean());
            Assert.Contains(expectedReason, document.RootElement.GetProperty("reason").GetString(), StringComparison.Ordinal);
            Assert.Equal(before, AuditDirectory.Snapshot(vault.DataDir));
        });
    }

    [Fact]
    public async Task AnUnfinishedLastLine_LeftByACrash_IsNotABreak_WhenEveryAnchoredEntryIsThere()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "offline/torn", Data = { ["v"] = "x" } }, vault.As());

        await vault.RestartAsync(async () =>
        {
            var file = AuditDirectory.Files(vault.DataDir)[^1];
            var intact = await AuditDirectory.OfflineVerifyAsync(vault.DataDir);
            Assert.True(intact.ExitCode == 0, intact.Stderr);
            // Half of an entry that was never acknowledged (its group's fsync never returned).
            var last = File.ReadAllLines(file)[^1];
            await File.AppendAllTextAsync(file, last[..(last.Length / 2)]);

            var torn = await AuditDirectory.OfflineVerifyAsync(vault.DataDir);

            Assert.True(torn.ExitCode == 0, torn.Stderr);
            Assert.Equal(intact.Stdout, torn.Stdout);
        });
    }

    [Fact]
    public async Task AWrongPassphrase_IsAOneLineError_Exit2_AndVerifiesNothing()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "offline/wrong", Data = { ["v"] = "x" } }, vault.As());

        await vault.RestartAsync(async () =>
        {
            var before = AuditDirectory.Snapshot(vault.DataDir);
            var wrong = await AuditDirectory.OfflineVerifyAsync(vault.DataDir, stdin: "not the passphrase at all\n");
            var none = await AuditDirectory.OfflineVerifyAsync(vault.DataDir, stdin: "");
            var asArgument = await AuditDirectory.OfflineVerifyAsync(vault.DataDir, stdin: "", "--passphrase", TestVault.Passphrase);

            AssertOneLineError(wrong, 2, "wrong passphrase");
            AssertOneLineError(none, 2, "no passphrase given");
            AssertOneLineError(asArgument, 2, "never an argument");
            Assert.Equal(before, AuditDirectory.Snapshot(vault.DataDir));
        });
    }

    [Fact]
    public async Task AMissingDataDirectory_OrOneWithoutAVault_IsAOneLineError_Exit2()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"vault-none-{Guid.NewGuid():N}");
        var empty = Directory.CreateTempSubdirectory("vault-empty-").FullName;
        try
        {
            AssertOneLineError(await AuditDirectory.OfflineVerifyAsync(missing), 2, $"data directory {missing} does not exist");
            AssertOneLineError(await AuditDirectory.OfflineVerifyAsync(empty), 2, "holds no vault");
            var usage = await VaultProcess.RunToExitWithInputAsync(new Dictionary<string, string>(), stdin: "", ["audit", "verify"]);
            AssertOneLineError(usage, 2, "--data-dir is required");
            Assert.Empty(Directory.GetFileSystemEntries(empty));
        }
        finally
        {
            Directory.Delete(empty, recursive: true);
        }
    }

    [Fact]
    public async Task ADataDirectoryARunningServerHolds_IsRefused_AndLeftAlone()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "offline/running", Data = { ["v"] = "x" } }, vault.As());

        var run = await AuditDirectory.OfflineVerifyAsync(vault.DataDir);

        AssertOneLineError(run, 2, "in use by a running server");
        Assert.True((await Audit(vault).VerifyAsync(new VerifyAuditRequest(), vault.As())).Ok);
    }

    [Fact]
    public async Task AnAcknowledgedGap_IsAcceptedOffline_AsOnline()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        for (var i = 0; i < 6; i++)
        {
            await vault.Kv.PutAsync(new PutSecretRequest { Path = $"offline/gap/{i}", Data = { ["v"] = "x" } }, vault.As());
        }
        var lastSeq = (await Audit(vault).TailAsync(new TailAuditRequest { Limit = 1 }, vault.As())).Entries.Single().Seq + 1;
        await vault.RestartAsync(() =>
        {
            var file = AuditDirectory.Files(vault.DataDir)[^1];
            var lines = File.ReadAllLines(file).ToList();
            lines.RemoveRange(lines.Count - 2, 2);
            File.WriteAllLines(file, lines);
        });
        await vault.UnsealAsync();
        await Audit(vault).AcknowledgeGapAsync(new AcknowledgeAuditGapRequest { LastMissing = lastSeq }, vault.As());
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "offline/gap/after", Data = { ["v"] = "x" } }, vault.As());

        await vault.RestartAsync(async () =>
        {
            var run = await AuditDirectory.OfflineVerifyAsync(vault.DataDir);
            Assert.True(run.ExitCode == 0, run.Stderr);
            Assert.StartsWith("audit log intact: ", run.Stdout, StringComparison.Ordinal);
        });
    }
}
