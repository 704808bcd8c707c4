using System.Collections.Concurrent;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Vault.Protocol.V1;
using Vault.Server.Audit;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Audit;

/// <summary>
/// A change and its audit entry are durable together and the reply says success, or neither
/// happened and the reply says so — also when the vault is sealed, or the audit file stops
/// taking writes, at the moment between a change's commit and its entry, under concurrent writers.
/// </summary>
public sealed class CommitAuditAtomicityTests
{
    private const int Writers = 8;

    [Fact]
    public async Task SealingUnderConcurrentWriters_NeverLeavesACommittedWriteAnsweredAsFailedOrUnaudited()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.UnsealAsync();
        // The operator seals and unseals on a connection of its own, as an admin's vaultctl would:
        // a full run once saw the writers' shared connection reset under load, and the unseal on it
        // failed the test before it had checked anything. A writer whose call a reset ends is
        // answered UNAVAILABLE, which the check below still holds to all-or-nothing.
        using var operatorChannel = global::Grpc.Net.Client.GrpcChannel.ForAddress(vault.Address);
        var system = new SystemService.SystemServiceClient(operatorChannel);
        var outcomes = await WriteWhileAsync(vault, async () =>
        {
            await system.SealAsync(new SealRequest(), vault.As());
            await Task.Delay(5);
            await system.UnsealAsync(new UnsealRequest { Passphrase = TestVault.Passphrase });
        });

        await AssertEachWriteIsAllOrNothingAsync(vault, outcomes);
    }

    [Fact]
    public async Task AuditWriteFailuresUnderConcurrentWriters_NeverLeaveACommittedWriteAnsweredAsFailedOrUnaudited()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.UnsealAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "atomic/first", Data = { ["v"] = "x" } }, vault.As());
        var directory = Path.Combine(vault.DataDir, "audit");
        var aside = directory + ".aside";
        var outcomes = await WriteWhileAsync(vault, async () =>
        {
            // Root ignores file permissions; a file where the audit directory should be stops
            // even root, and nothing recreates the directory behind the test's back.
            Directory.Move(directory, aside);
            await File.WriteAllTextAsync(directory, "");
            await Task.Delay(10);
            File.Delete(directory);
            Directory.Move(aside, directory);
            await Task.Delay(10);
        });

        await AssertEachWriteIsAllOrNothingAsync(vault, outcomes);
    }

    /// <summary>Runs <see cref="Writers"/> writers of unique paths while <paramref name="fault"/> repeats; the status each write got.</summary>
    private static async Task<ConcurrentDictionary<string, StatusCode>> WriteWhileAsync(TestVault vault, Func<Task> fault)
    {
        var outcomes = new ConcurrentDictionary<string, StatusCode>();
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var path = $"atomic/w{w}/s{i}";
                try
                {
                    await vault.Kv.PutAsync(new PutSecretRequest { Path = path, Data = { ["v"] = path } }, vault.As());
                    outcomes[path] = StatusCode.OK;
                }
                catch (RpcException ex)
                {
                    outcomes[path] = ex.StatusCode;
                    // The edges of a fault are what this test is about; a writer that retried at
                    // once for as long as the vault stays sealed would only make thousands of
                    // refusals, and its share of two cores would slow the fault it waits out.
                    await Task.Delay(1);
                }
            }
        })).ToList();
        for (var round = 0; round < 40; round++)
        {
            await fault();
        }
        await stop.CancelAsync();
        await Task.WhenAll(writers);
        return outcomes;
    }

    private static async Task AssertEachWriteIsAllOrNothingAsync(TestVault vault, ConcurrentDictionary<string, StatusCode> outcomes)
    {
        Assert.Contains(outcomes.Values, s => s == StatusCode.OK);
        Assert.Contains(outcomes.Values, s => s != StatusCode.OK);
        Assert.All(outcomes.Values, s => Assert.True(s is StatusCode.OK or StatusCode.FailedPrecondition or StatusCode.Unavailable, $"unexpected {s}"));
        // Both that it is on disk and how the log recorded it, after a restart.
        await vault.RestartAsync();
        await vault.UnsealAsync();
        var audited = vault.Services.GetRequiredService<AuditLog>().ReadAll()
            .Where(e => e.Rpc == "vault.v1.KvService/Put" && e.Outcome == "ok")
            .Select(e => e.Path)
            .ToHashSet(StringComparer.Ordinal);
        // What is stored, from the listing of each writer's folder; a write answered OK must
        // also read back as what was written.
        var stored = new HashSet<string>(StringComparer.Ordinal);
        for (var w = 0; w < Writers; w++)
        {
            var listed = await vault.Kv.ListAsync(new ListSecretsRequest { Prefix = $"atomic/w{w}/" }, vault.As());
            stored.UnionWith(listed.Keys.Select(key => $"atomic/w{w}/{key}"));
        }
        var wrong = new List<string>();
        foreach (var (path, status) in outcomes)
        {
            var answeredOk = status == StatusCode.OK;
            var loggedOk = audited.Contains($"kv/{path}");
            if (stored.Contains(path) != answeredOk || loggedOk != answeredOk)
            {
                wrong.Add($"{path}: answered {status}, stored {stored.Contains(path)}, audited ok {loggedOk}");
            }
            else if (answeredOk)
            {
                var read = await vault.Kv.GetAsync(new GetSecretRequest { Path = path }, vault.As());
                Assert.Equal(path, read.Data["v"]);
            }
        }
        Assert.True(wrong.Count == 0, $"{wrong.Count} of {outcomes.Count} writes were not all-or-nothing:\n{string.Join('\n', wrong.Take(20))}");
        var verdict = await new AuditService.AuditServiceClient(vault.Channel).VerifyAsync(new VerifyAuditRequest(), vault.As());
        Assert.True(verdict.Ok, verdict.Reason);
    }
}
