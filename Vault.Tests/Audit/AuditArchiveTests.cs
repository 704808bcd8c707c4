using System.Text.Json;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Audit;

/// <summary>
/// Retention is an explicit, authorised, audited operation: archiving moves the older closed
/// files into audit/archive/ and records in the sealed anchor where the kept chain now begins, so
/// verify (online, after a restart, and offline) starts there; archived files may come back or go
/// away, while a kept file removed by hand is still found.
/// </summary>
public sealed class AuditArchiveTests
{
    private const string SmallFiles = "--Vault:AuditMaxFileBytes=65536";
    private static readonly string LongName = new('p', 200);

    private static AuditService.AuditServiceClient Audit(TestVault vault) => new(vault.Channel);

    private static string ArchiveDir(TestVault vault) => Path.Combine(vault.DataDir, "audit", "archive");

    private static List<string> Names(IEnumerable<string> files) => [.. files.Select(f => Path.GetFileName(f)!)];

    private static async Task<VerifyAuditResponse> VerifyAsync(TestVault vault)
    {
        var verdict = await Audit(vault).VerifyAsync(new VerifyAuditRequest(), vault.As());
        return verdict;
    }

    private static ulong FirstSeqOf(string file)
    {
        using var document = JsonDocument.Parse(File.ReadLines(file).First());
        return document.RootElement.GetProperty("seq").GetUInt64();
    }

    [Fact]
    public async Task Archive_MovesTheOlderFiles_AndVerifyStartsAtTheKeptChain_OnlineAfterARestartAndOffline()
    {
        await using var vault = await TestVault.StartInitializedAsync(SmallFiles);
        await AuditDirectory.FillAsync(vault, files: 4);
        var before = AuditDirectory.Files(vault.DataDir);
        var everything = await VerifyAsync(vault);
        Assert.True(everything.Ok, everything.Reason);

        var result = await Audit(vault).ArchiveAsync(new ArchiveAuditRequest { KeepFiles = 2 }, vault.As());

        // The newest two files stay (the current one among them); the rest are moved, not deleted.
        var kept = before.TakeLast(2).ToList();
        Assert.Equal(Names(before.SkipLast(2)), [.. result.ArchivedFiles]);
        Assert.Equal(Path.GetFileName(kept[0]), result.StartFile);
        Assert.Equal(FirstSeqOf(kept[0]), result.StartSeq);
        Assert.Equal(Names(kept), Names(AuditDirectory.Files(vault.DataDir).Take(2)));
        Assert.Equal([.. result.ArchivedFiles], Names(Directory.GetFiles(ArchiveDir(vault)).Order(StringComparer.Ordinal)));
        // The archive itself is audited, and the chain from its new start is intact.
        var entry = (await Audit(vault).TailAsync(new TailAuditRequest { Rpc = "AuditService/Archive" }, vault.As())).Entries.Single();
        Assert.Equal(("sys/audit/archive", "ok"), (entry.Path, entry.Outcome));
        var archived = await VerifyAsync(vault);
        Assert.True(archived.Ok, archived.Reason);
        Assert.True(archived.EntriesChecked < everything.EntriesChecked, $"{archived.EntriesChecked} entries checked after archiving, {everything.EntriesChecked} before");

        ExitedProcess? offline = null;
        await vault.RestartAsync(async () => offline = await AuditDirectory.OfflineVerifyAsync(vault.DataDir));
        Assert.True(offline!.ExitCode == 0, offline.Stderr);
        Assert.StartsWith("audit log intact: ", offline.Stdout, StringComparison.Ordinal);
        await vault.UnsealAsync();
        Assert.Empty((await vault.System.StatusAsync(new StatusRequest())).AuditFailure);
        var restarted = await VerifyAsync(vault);
        Assert.True(restarted.Ok, restarted.Reason);
        Assert.True(restarted.EntriesChecked < everything.EntriesChecked);
    }

    [Theory]
    [InlineData("moved-back")]
    [InlineData("archive-deleted")]
    public async Task ArchivedFiles_MovedBackOrDeleted_ChangeNothing(string what)
    {
        await using var vault = await TestVault.StartInitializedAsync(SmallFiles);
        await AuditDirectory.FillAsync(vault, files: 3);
        var result = await Audit(vault).ArchiveAsync(new ArchiveAuditRequest { KeepFiles = 1 }, vault.As());
        Assert.NotEmpty(result.ArchivedFiles);

        await vault.RestartAsync(() =>
        {
            foreach (var file in Directory.GetFiles(ArchiveDir(vault)))
            {
                if (what == "moved-back")
                {
                    File.Move(file, Path.Combine(vault.DataDir, "audit", Path.GetFileName(file)));
                }
                else
                {
                    File.Delete(file);
                }
            }
        });
        await vault.UnsealAsync();

        var verdict = await VerifyAsync(vault);
        Assert.True(verdict.Ok, verdict.Reason);
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "archive/after", Data = { ["v"] = "x" } }, vault.As());
        // Tail shows the kept chain only: nothing older than its start.
        var oldest = (await Audit(vault).TailAsync(new TailAuditRequest { Limit = 10_000 }, vault.As())).Entries[0];
        Assert.Equal(result.StartSeq, oldest.Seq);
        if (what == "moved-back")
        {
            // A second archive puts them away again, and still verifies.
            var again = await Audit(vault).ArchiveAsync(new ArchiveAuditRequest { KeepFiles = 1 }, vault.As());
            Assert.Equal([.. result.ArchivedFiles], [.. again.ArchivedFiles]);
            Assert.True((await VerifyAsync(vault)).Ok);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public async Task AKeptFileRemovedByHand_AfterAnArchive_IsFoundMissing_OnlineAndOffline(int keptIndex)
    {
        await using var vault = await TestVault.StartInitializedAsync(SmallFiles);
        await AuditDirectory.FillAsync(vault, files: 5);
        var result = await Audit(vault).ArchiveAsync(new ArchiveAuditRequest { KeepFiles = 3 }, vault.As());
        var kept = AuditDirectory.Files(vault.DataDir);
        Assert.Equal(result.StartFile, Path.GetFileName(kept[0]));
        var removed = kept[keptIndex];
        var firstMissing = FirstSeqOf(removed);

        ExitedProcess? offline = null;
        await vault.RestartAsync(async () =>
        {
            File.Delete(removed);
            offline = await AuditDirectory.OfflineVerifyAsync(vault.DataDir);
        });
        await vault.UnsealAsync();

        var verdict = await VerifyAsync(vault);
        Assert.False(verdict.Ok);
        Assert.Equal($"entry {firstMissing} is missing (found {FirstSeqOf(kept[keptIndex + 1])}): deleted or reordered", verdict.Reason);
        Assert.Equal(4, offline!.ExitCode);
        Assert.Contains($"entry {firstMissing} is missing", offline.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Archive_WithoutTheCapability_IsPermissionDenied_AndMovesNothing()
    {
        await using var vault = await TestVault.StartInitializedAsync(SmallFiles);
        await AuditDirectory.FillAsync(vault, files: 3);
        var auditor = new Policy { Name = "auditor", Rules = { new PolicyRule { Path = "sys/audit", Capabilities = { "read" } }, new PolicyRule { Path = "sys/audit/hash", Capabilities = { "update" } } } };
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = auditor }, vault.As());
        var token = (await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "auditor" } }, vault.As())).Token;
        var before = AuditDirectory.Files(vault.DataDir);

        await Rpc.FailsWith(StatusCode.PermissionDenied, () => Audit(vault).ArchiveAsync(new ArchiveAuditRequest { KeepFiles = 1 }, vault.As(token)));

        Assert.Equal(before, AuditDirectory.Files(vault.DataDir));
        Assert.False(Directory.Exists(ArchiveDir(vault)));
        var refused = (await Audit(vault).TailAsync(new TailAuditRequest { Rpc = "AuditService/Archive" }, vault.As())).Entries.Single();
        Assert.Equal(("error", "PermissionDenied"), (refused.Outcome, refused.ErrorCode));
        var verdict = await VerifyAsync(vault);
        Assert.True(verdict.Ok, verdict.Reason);
        Assert.Equal(1UL, (await Audit(vault).TailAsync(new TailAuditRequest { Limit = 10_000 }, vault.As())).Entries[0].Seq);
    }

    [Fact]
    public async Task Archive_OfABrokenChain_IsRefused_AndMovesNothing()
    {
        await using var vault = await TestVault.StartInitializedAsync(SmallFiles);
        await AuditDirectory.FillAsync(vault, files: 3);
        var files = AuditDirectory.Files(vault.DataDir);
        var lines = File.ReadAllLines(files[0]);
        lines[2] = lines[2].Replace("\"path\":\"kv/", "\"path\":\"Kv/", StringComparison.Ordinal);
        File.WriteAllLines(files[0], lines);

        var refused = await Rpc.FailsWith(StatusCode.FailedPrecondition, () => Audit(vault).ArchiveAsync(new ArchiveAuditRequest { KeepFiles = 1 }, vault.As()));

        Assert.Contains($"broken at {Path.GetFileName(files[0])} line 3", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(files, AuditDirectory.Files(vault.DataDir).Take(files.Count).ToList());
        Assert.False(Directory.Exists(ArchiveDir(vault)));
    }

    [Fact]
    public async Task Archive_BeforeFile_KeepsThatFile_AndRefusesWhatIsNotAKeptFile()
    {
        await using var vault = await TestVault.StartInitializedAsync(SmallFiles);
        await AuditDirectory.FillAsync(vault, files: 4);
        var files = Names(AuditDirectory.Files(vault.DataDir));

        await Rpc.FailsWith(StatusCode.InvalidArgument, () => Audit(vault).ArchiveAsync(new ArchiveAuditRequest(), vault.As()));
        await Rpc.FailsWith(StatusCode.InvalidArgument, () => Audit(vault).ArchiveAsync(new ArchiveAuditRequest { KeepFiles = 1, BeforeFile = files[1] }, vault.As()));
        await Rpc.FailsWith(StatusCode.InvalidArgument, () => Audit(vault).ArchiveAsync(new ArchiveAuditRequest { BeforeFile = "../vault.db" }, vault.As()));
        await Rpc.FailsWith(StatusCode.InvalidArgument, () => Audit(vault).ArchiveAsync(new ArchiveAuditRequest { BeforeFile = "audit-999999.jsonl" }, vault.As()));
        Assert.False(Directory.Exists(ArchiveDir(vault)));

        var result = await Audit(vault).ArchiveAsync(new ArchiveAuditRequest { BeforeFile = files[2] }, vault.As());
        Assert.Equal(files.Take(2), [.. result.ArchivedFiles]);
        Assert.Equal(files[2], result.StartFile);

        // Already archived: nothing more to do, and the kept chain still begins where it did.
        var again = await Audit(vault).ArchiveAsync(new ArchiveAuditRequest { BeforeFile = files[1] }, vault.As());
        Assert.Empty(again.ArchivedFiles);
        Assert.Equal(files[2], again.StartFile);
        Assert.True((await VerifyAsync(vault)).Ok);
    }

    [Fact]
    public async Task Archive_WhileRequestsAreWritten_LeavesAnIntactChain_AcrossARestart()
    {
        await using var vault = await TestVault.StartInitializedAsync(SmallFiles);
        await AuditDirectory.FillAsync(vault, files: 3);
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                await vault.Kv.PutAsync(new PutSecretRequest { Path = $"busy/{w}/{i}/{LongName}", Data = { ["v"] = "x" } }, vault.As());
            }
        })).ToList();
        try
        {
            await Task.Delay(200);
            for (var round = 0; round < 3; round++)
            {
                await Audit(vault).ArchiveAsync(new ArchiveAuditRequest { KeepFiles = 1 }, vault.As());
                await Task.Delay(300);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(writers);
        }

        var verdict = await VerifyAsync(vault);
        Assert.True(verdict.Ok, verdict.Reason);
        await vault.RestartAsync();
        await vault.UnsealAsync();
        Assert.Empty((await vault.System.StatusAsync(new StatusRequest())).AuditFailure);
        var restarted = await VerifyAsync(vault);
        Assert.True(restarted.Ok, restarted.Reason);
    }
}
