using System.Collections.Concurrent;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Vault.Protocol.V1;
using Vault.Server.Audit;
using Vault.Server.Storage;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Audit;

/// <summary>
/// The entry of a request that changed nothing is written before its reply and made durable
/// (fsync'd, then anchored in the store) by the flusher within the flush window, so a reply does
/// not wait for a disk that large writes keep busy; with a zero window it is durable before the
/// reply, as an entry of a change always is. A crash of the process loses none of them.
/// </summary>
public sealed class ReadOnlyAuditDurabilityTests
{
    private static ulong AnchoredSeq(TestVault vault) =>
        vault.Services.GetRequiredService<IVaultStore>().Get<AuditAnchorRecord>(Collections.System, AuditAnchorRecord.Id)?.Seq ?? 0;

    private static ulong SeqOfRead(TestVault vault, string path) =>
        vault.Services.GetRequiredService<AuditLog>().ReadAll()
            .Last(e => e.Rpc == "vault.v1.KvService/Get" && e.Path == "kv/" + path).Seq;

    private static async Task AnchoredThroughAsync(TestVault vault, ulong seq)
    {
        // The flusher is a thread of its own: it gets there soon, but not by the time this runs.
        for (var waited = 0; AnchoredSeq(vault) < seq; waited += 10)
        {
            Assert.True(waited < 30_000, $"entry {seq} was not anchored within 30 s (anchor at {AnchoredSeq(vault)})");
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task AReadsEntry_IsInTheLogWhenItsReplyArrives_AndAnchoredOnceTheWindowHasPassed()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await TestVault.StartInitializedAsync(
            builder => builder.Services.AddSingleton<TimeProvider>(clock), "--Vault:AuditReadOnlyFlushWindow=00:00:00.010");
        await vault.UnsealAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "window/one", Data = { ["v"] = "1" } }, vault.As());
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "window/two", Data = { ["v"] = "2" } }, vault.As());
        // The first read after a while is flushed at once; wait for that flush to finish, so the
        // next one must wait out the window on the (stopped) clock.
        await vault.Kv.GetAsync(new GetSecretRequest { Path = "window/one" }, vault.As());
        await AnchoredThroughAsync(vault, SeqOfRead(vault, "window/one"));

        var read = await vault.Kv.GetAsync(new GetSecretRequest { Path = "window/two" }, vault.As());

        Assert.Equal("2", read.Data["v"]);
        var seq = SeqOfRead(vault, "window/two");
        Assert.True(AnchoredSeq(vault) < seq, "the read's entry was anchored before the window passed: its reply waited for the flush");
        clock.Advance(TimeSpan.FromMilliseconds(10));
        await AnchoredThroughAsync(vault, seq);
        var verdict = await new AuditService.AuditServiceClient(vault.Channel).VerifyAsync(new VerifyAuditRequest(), vault.As());
        Assert.True(verdict.Ok, verdict.Reason);
    }

    [Fact]
    public async Task ASealsEntry_IsAnchoredBeforeItsReply_WhateverTheWindow()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await TestVault.StartInitializedAsync(
            builder => builder.Services.AddSingleton<TimeProvider>(clock), "--Vault:AuditReadOnlyFlushWindow=00:00:00.010");
        await vault.UnsealAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "seal/one", Data = { ["v"] = "1" } }, vault.As());
        // A flush just happened, so the flusher now waits out the window on the stopped clock.
        await vault.Kv.GetAsync(new GetSecretRequest { Path = "seal/one" }, vault.As());
        await AnchoredThroughAsync(vault, SeqOfRead(vault, "seal/one"));

        await vault.System.SealAsync(new SealRequest(), vault.As());

        var sealSeq = vault.Services.GetRequiredService<AuditLog>().ReadAll().Last(e => e.Rpc == "vault.v1.SystemService/Seal").Seq;
        Assert.Equal(sealSeq, AnchoredSeq(vault));
    }

    [Fact]
    public async Task WithAZeroWindow_AReadsEntry_IsAnchoredBeforeItsReply()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await TestVault.StartInitializedAsync(
            builder => builder.Services.AddSingleton<TimeProvider>(clock), "--Vault:AuditReadOnlyFlushWindow=00:00:00");
        await vault.UnsealAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "strict/one", Data = { ["v"] = "1" } }, vault.As());

        for (var i = 0; i < 5; i++)
        {
            await vault.Kv.GetAsync(new GetSecretRequest { Path = "strict/one" }, vault.As());

            Assert.Equal(SeqOfRead(vault, "strict/one"), AnchoredSeq(vault));
        }
    }

    [Theory]
    [InlineData("00:00:02")]
    [InlineData("-00:00:00.001")]
    public async Task AWindowOutsideZeroToOneSecond_RefusesStartUp(string window)
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => TestVault.StartInitializedAsync($"--Vault:AuditReadOnlyFlushWindow={window}"));

        Assert.Contains("AuditReadOnlyFlushWindow", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KillingTheProcess_LosesNoAnsweredReadsEntry_AndLeavesNoGap()
    {
        var dataDir = Directory.CreateTempSubdirectory("vault-read-crash-").FullName;
        await using var server = new VaultProcess(dataDir);
        await server.StartAsync();
        var system = new SystemService.SystemServiceClient(server.Channel);
        var init = await system.InitAsync(new InitRequest { Passphrase = TestVault.Passphrase, Kdf = TestVault.FastKdf });
        var auth = new Metadata { { "authorization", "Bearer " + init.RootToken } };
        var kv = new KvService.KvServiceClient(server.Channel);
        await kv.PutAsync(new PutSecretRequest { Path = "crash/read", Data = { ["v"] = "x" } }, auth);

        // Readers of paths that do not exist: each answer (NOT_FOUND) names its own path, so
        // every answered read can be found in the log afterwards.
        var answered = new ConcurrentBag<string>();
        using var stop = new CancellationTokenSource();
        var readers = Enumerable.Range(0, 8).Select(r => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var path = $"crash/r{r}/{i}";
                try
                {
                    await kv.GetAsync(new GetSecretRequest { Path = path }, auth, deadline: DateTime.UtcNow.AddSeconds(10));
                }
                catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
                {
                    answered.Add(path);
                }
                catch (RpcException)
                {
                    return; // killed under the read: never answered
                }
            }
        })).ToList();
        for (var waited = 0; answered.Count < 300; waited += 20)
        {
            Assert.True(waited < 60_000 && !readers.All(r => r.IsCompleted), $"readers stopped after {answered.Count} reads; server output:\n{server.Output}");
            await Task.Delay(20);
        }
        await server.KillAsync();
        await stop.CancelAsync();
        await Task.WhenAll(readers);

        await server.StartAsync();
        system = new SystemService.SystemServiceClient(server.Channel);
        await system.UnsealAsync(new UnsealRequest { Passphrase = TestVault.Passphrase });
        Assert.Empty((await system.StatusAsync(new StatusRequest())).AuditFailure);
        var audit = new AuditService.AuditServiceClient(server.Channel);
        var verdict = await audit.VerifyAsync(new VerifyAuditRequest(), auth);
        Assert.True(verdict.Ok, verdict.Reason);
        var logged = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in Directory.GetFiles(Path.Combine(dataDir, "audit"), "audit-*.jsonl"))
        {
            foreach (var line in File.ReadLines(file))
            {
                var path = System.Text.Json.JsonDocument.Parse(line).RootElement.GetProperty("path").GetString();
                logged.Add(path ?? "");
            }
        }
        var lost = answered.Where(p => !logged.Contains("kv/" + p)).ToList();
        Assert.True(lost.Count == 0, $"{lost.Count} of {answered.Count} answered reads have no audit entry after the kill, e.g. {string.Join(", ", lost.Take(3))}");
        await server.KillAsync();
        Directory.Delete(dataDir, recursive: true);
    }
}
