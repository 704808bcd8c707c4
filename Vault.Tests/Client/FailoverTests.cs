using System.Net;
using System.Net.Sockets;
using Grpc.Core;
using Vault.Client;
using Vault.Protocol.V1;
using Vault.Testing;
using Vault.Tests.Cli;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Client;

/// <summary>
/// A client given several nodes' addresses (two vault processes holding the same vault, the second
/// restored from a backup of the first): when the node it uses dies it moves on; a call that never
/// reached a node, only reads, or is a write carrying an idempotency key, is sent again to the
/// next; any other write whose fate is unknown is not.
/// </summary>
public sealed class FailoverTests : IAsyncLifetime
{
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("vault-failover-test-");
    private VaultProcess? _a;
    private VaultProcess? _b;
    private string _rootToken = "";

    private VaultProcess A => _a!;
    private VaultProcess B => _b!;

    public async Task InitializeAsync()
    {
        _a = new VaultProcess(Path.Combine(_work.FullName, "a"));
        await A.StartAsync();
        var init = await new SystemService.SystemServiceClient(A.Channel).InitAsync(new InitRequest { Passphrase = TestVault.Passphrase, Kdf = TestVault.FastKdf });
        _rootToken = init.RootToken;
        var auth = new CallOptions(new Metadata { { "authorization", $"Bearer {_rootToken}" } });
        await new KvService.KvServiceClient(A.Channel).PutAsync(new PutSecretRequest { Path = "app/db", Data = { ["password"] = "on-both-nodes" } }, auth);

        // The second node holds the same vault: restored from a backup of the first.
        var backup = Path.Combine(_work.FullName, "a.bak");
        var passphrase = Path.Combine(_work.FullName, "passphrase");
        await File.WriteAllTextAsync(passphrase, TestVault.Passphrase);
        (await new VaultCtl(A.Address, _rootToken).RunAsync("operator", "backup", backup)).Ok();
        (await new VaultCtl(A.Address).RunAsync("operator", "restore", backup, "--data-dir", Path.Combine(_work.FullName, "b"), "--passphrase-file", passphrase)).Ok();
        _b = new VaultProcess(Path.Combine(_work.FullName, "b"));
        await B.StartAsync();
        await new SystemService.SystemServiceClient(B.Channel).UnsealAsync(new UnsealRequest { Passphrase = TestVault.Passphrase });
    }

    public async Task DisposeAsync()
    {
        await (_a?.DisposeAsync() ?? ValueTask.CompletedTask);
        await (_b?.DisposeAsync() ?? ValueTask.CompletedTask);
        _work.Delete(recursive: true);
    }

    [Fact]
    public async Task WhenItsNodeDies_TheClientMovesToTheNext_ForReadsAndForWritesThatNeverReachedIt()
    {
        using var client = new VaultClient(new VaultClientOptions { Address = $"{A.Address},{B.Address}", Token = _rootToken });
        Assert.Equal([new Uri(A.Address), new Uri(B.Address)], client.Addresses);
        Assert.Equal("on-both-nodes", (await client.GetSecretAsync("app/db")).Data["password"]);
        Assert.Equal(new Uri(A.Address), client.CurrentAddress);

        await A.KillAsync();
        // A read is sent again to the next node; the client stays there.
        Assert.Equal("on-both-nodes", (await client.GetSecretAsync("app/db")).Data["password"]);
        Assert.Equal(new Uri(B.Address), client.CurrentAddress);
        await client.PutSecretAsync("app/after", new Dictionary<string, string> { ["v"] = "1" });

        // A fresh client whose first node is down: its first call, a write, never reached that
        // node (the connection was refused), so it is made on the next.
        using var fresh = new VaultClient(new VaultClientOptions { Address = $"{A.Address},{B.Address}", Token = _rootToken });
        await fresh.PutSecretAsync("app/fresh", new Dictionary<string, string> { ["v"] = "2" });
        Assert.Equal("2", (await client.GetSecretAsync("app/fresh")).Data["v"]);

        // vaultctl takes the same list.
        Assert.Equal("on-both-nodes\n", (await new VaultCtl($"{A.Address},{B.Address}", _rootToken).RunAsync("kv", "get", "app/db", "--field", "password")).Ok());
    }

    [Fact]
    public async Task AWriteThatReachedANodeWhichThenFailed_IsNotRepeated_ButAReadAndAKeyedWriteAre()
    {
        // A node that takes the request and drops the connection without an answer: whether it
        // acted on it is unknown. While `forwarding` is set it is B instead (new connections are
        // piped to B): a client's answers through it come from a vault that honours keys.
        using var dropper = new TcpListener(IPAddress.Loopback, 0);
        dropper.Start();
        var dropAddress = $"http://127.0.0.1:{((IPEndPoint)dropper.LocalEndpoint).Port}";
        using var stop = new CancellationTokenSource();
        var forwarding = 0;
        var piped = new System.Collections.Concurrent.ConcurrentBag<TcpClient>();
        var dropping = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var connection = await dropper.AcceptTcpClientAsync(stop.Token);
                if (Volatile.Read(ref forwarding) == 1)
                {
                    var upstream = new TcpClient();
                    await upstream.ConnectAsync(IPAddress.Loopback, new Uri(B.Address).Port, stop.Token);
                    piped.Add(connection);
                    piped.Add(upstream);
                    _ = Task.WhenAny(connection.GetStream().CopyToAsync(upstream.GetStream(), stop.Token), upstream.GetStream().CopyToAsync(connection.GetStream(), stop.Token))
                        .ContinueWith(_ => { connection.Dispose(); upstream.Dispose(); }, TaskScheduler.Default);
                    continue;
                }
                using (connection)
                {
                    var buffer = new byte[4096];
                    // The HTTP/2 preface, settings and the request's frames.
                    await connection.GetStream().ReadAtLeastAsync(buffer, 100, throwOnEndOfStream: false, stop.Token);
                    connection.Client.LingerState = new LingerOption(true, 0);
                }
            }
        });

        using var client = new VaultClient(new VaultClientOptions { Address = $"{dropAddress},{B.Address}", Token = _rootToken });
        // A write no node answers once per key (a policy): not sent again.
        var write = await Assert.ThrowsAsync<RpcException>(() => client.PutPolicyAsync(new Policy { Name = "unknown-fate", Rules = { new PolicyRule { Path = "app/*", Capabilities = { "read" } } } }));
        Assert.Equal(StatusCode.Unavailable, write.StatusCode);
        var onB = await Rpc.FailsWith(StatusCode.NotFound, () => new PolicyService.PolicyServiceClient(B.Channel)
            .GetAsync(new GetPolicyRequest { Name = "unknown-fate" }, new CallOptions(new Metadata { { "authorization", $"Bearer {_rootToken}" } })).ResponseAsync);
        Assert.Contains("unknown-fate", onB.Status.Detail, StringComparison.Ordinal);
        // The next call goes to the next node.
        Assert.Equal(new Uri(B.Address), client.CurrentAddress);

        // A put carries an idempotency key, but the vault has not yet shown this client that it
        // honours keys (a node from before them would make it twice): not sent again.
        using var fresh = new VaultClient(new VaultClientOptions { Address = $"{dropAddress},{B.Address}", Token = _rootToken });
        var unproven = await Assert.ThrowsAsync<RpcException>(() => fresh.PutSecretAsync("app/not-sent-again", new Dictionary<string, string> { ["v"] = "1" }));
        Assert.Equal(StatusCode.Unavailable, unproven.StatusCode);
        await Rpc.FailsWith(StatusCode.NotFound, () => new KvService.KvServiceClient(B.Channel)
            .GetAsync(new GetSecretRequest { Path = "app/not-sent-again" }, new CallOptions(new Metadata { { "authorization", $"Bearer {_rootToken}" } })).ResponseAsync);

        // Once a keyed put was answered by a vault that honours keys, one whose node failed after
        // taking it is sent again to the next node, and made there once.
        using var keyed = new VaultClient(new VaultClientOptions { Address = $"{dropAddress},{B.Address}", Token = _rootToken });
        Volatile.Write(ref forwarding, 1);
        Assert.Equal(1ul, (await keyed.PutSecretAsync("app/answered", new Dictionary<string, string> { ["v"] = "1" })).Version);
        Volatile.Write(ref forwarding, 0);
        foreach (var connection in piped)
        {
            // Reset, not closed politely: the client finds its connection through "B" gone.
            try
            {
                connection.Client?.LingerState = new LingerOption(true, 0);
            }
            catch (ObjectDisposedException)
            {
                // The pipe ended on its own meanwhile.
            }
            connection.Dispose();
        }
        Assert.Equal(1ul, (await keyed.PutSecretAsync("app/sent-again", new Dictionary<string, string> { ["v"] = "1" })).Version);
        Assert.Equal(new Uri(B.Address), keyed.CurrentAddress);
        Assert.Equal("1", (await keyed.GetSecretAsync("app/sent-again")).Data["v"]);

        using var reader = new VaultClient(new VaultClientOptions { Address = $"{dropAddress},{B.Address}", Token = _rootToken });
        Assert.Equal("on-both-nodes", (await reader.GetSecretAsync("app/db")).Data["password"]);
        await stop.CancelAsync();
        await dropping.ContinueWith(_ => { }, TaskScheduler.Default);
    }
}
