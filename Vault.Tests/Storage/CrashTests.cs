using System.Collections.Concurrent;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Storage;

/// <summary>An acknowledged write survives SIGKILL: the store fsyncs before it replies.</summary>
public sealed class CrashTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task KillDuringConcurrentWrites_LosesNoAcknowledgedWrite(int run)
    {
        var dataDir = Directory.CreateTempSubdirectory($"vault-crash-{run}-").FullName;
        await using var server = new VaultProcess(dataDir);
        await server.StartAsync();
        var system = new SystemService.SystemServiceClient(server.Channel);
        var init = await system.InitAsync(new InitRequest { Passphrase = TestVault.Passphrase, Kdf = TestVault.FastKdf });
        var auth = new Metadata { { "authorization", "Bearer " + init.RootToken } };

        var acknowledged = new ConcurrentDictionary<string, string>();
        using var stop = new CancellationTokenSource();
        var killed = false;
        var kv = new KvService.KvServiceClient(server.Channel);
        var writers = Enumerable.Range(0, 16).Select(w => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var path = $"crash/w{w}/s{i}";
                var value = $"value-{run}-{w}-{i}-{Guid.NewGuid():N}";
                var request = new PutSecretRequest { Path = path };
                request.Data["v"] = value;
                try
                {
                    await kv.PutAsync(request, auth, deadline: DateTime.UtcNow.AddSeconds(10));
                    acknowledged[path] = value;
                }
                catch (RpcException) when (stop.IsCancellationRequested || killed)
                {
                    return; // the server died under us: this write was never acknowledged
                }
            }
        })).ToList();

        // Let writes pile up, then kill the process in the middle of them.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (acknowledged.Count < 200 + run * 50)
        {
            if (writers.All(w => w.IsCompleted) || DateTime.UtcNow > deadline)
            {
                var errors = string.Join("; ", writers.Where(w => w.IsFaulted).Select(w => w.Exception!.InnerException!.Message).Distinct());
                Assert.Fail($"writers stopped after {acknowledged.Count} writes before the kill ({errors}); server output:\n{server.Output}");
            }
            await Task.Delay(20);
        }
        killed = true;
        await server.KillAsync();
        await stop.CancelAsync();
        await Task.WhenAll(writers);
        var snapshot = acknowledged.ToDictionary();

        await server.StartAsync();
        system = new SystemService.SystemServiceClient(server.Channel);
        Assert.True((await system.StatusAsync(new StatusRequest())).Sealed);
        await system.UnsealAsync(new UnsealRequest { Passphrase = TestVault.Passphrase });
        kv = new KvService.KvServiceClient(server.Channel);
        try
        {
            foreach (var (path, value) in snapshot)
            {
                var read = await kv.GetAsync(new GetSecretRequest { Path = path }, auth);
                Assert.Equal(value, read.Data["v"]);
            }
        }
        catch (RpcException ex)
        {
            throw new InvalidOperationException($"read-back failed ({ex.Status}); server output:\n{server.Output}", ex);
        }
        Assert.True(snapshot.Count >= 200);
        // Stopped first: a live server may still be writing (the audit anchor follows each read).
        await server.KillAsync();
        Directory.Delete(dataDir, recursive: true);
    }
}
