using System.Collections.Concurrent;
using Grpc.Core;
using Npgsql;
using Vault.Client;
using Vault.Protocol.V1;
using Vault.Testing.Servers;

namespace Vault.Tests.Cluster;

/// <summary>
/// Three nodes on a PostgreSQL server of their own, which is restarted under write load: the nodes
/// ride through it — one of them is active again, writes resume through a client given every
/// address, reads on every node go on — and nothing acknowledged is lost.
/// </summary>
public sealed class SeveralNodesRestartTests : IAsyncLifetime
{
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("vault-nodes-restart-");
    private PostgresServer? _pg;
    private NodeGroup? _group;

    private NodeGroup Group => _group ?? throw new InvalidOperationException("not started");

    public async Task InitializeAsync()
    {
        _pg = await PostgresServer.StartAsync();
        _group = await NodeGroup.StartAsync(_work.FullName, _pg.SuperConnectionString);
    }

    public async Task DisposeAsync()
    {
        await (_group?.DisposeAsync() ?? ValueTask.CompletedTask);
        NpgsqlConnection.ClearAllPools();
        await (_pg?.DisposeAsync() ?? ValueTask.CompletedTask);
        _work.Delete(recursive: true);
    }

    [Fact]
    public async Task PostgresRestartedUnderLoad_TheNodesRideThrough_AndNothingAcknowledgedIsLost()
    {
        var addresses = Group.Addresses(await Group.ActiveAsync());
        using var stop = new CancellationTokenSource();
        var load = Group.StartWriters(addresses, stop.Token);
        var acknowledged = load.Acknowledged;
        var writers = load.Tasks;
        await NodeGroup.Eventually(() => Task.FromResult(acknowledged.Count >= 100), "the writers made no progress");

        await _pg!.RestartAsync();
        var atRestart = acknowledged.Count;
        await NodeGroup.Eventually(() => Task.FromResult(acknowledged.Count >= atRestart + 100), "writes did not resume after the restart");
        await stop.CancelAsync();
        await Task.WhenAll(writers);

        // While the database was away, writes were refused as UNAVAILABLE, never otherwise.
        Assert.All(load.Errors, e => Assert.Equal(StatusCode.Unavailable, e.StatusCode));
        var active = await Group.ActiveAsync();
        foreach (var node in Group.Nodes)
        {
            var status = await NodeGroup.StatusOf(node);
            Assert.Equal("", status.StorageFailure);
            Assert.Equal(node == active, status.Active);
        }
        // Every acknowledged write is there, read on each node with the newest index.
        using var reader = new VaultClient(new VaultClientOptions { Address = Group.Addresses(active), Token = Group.RootToken });
        foreach (var path in acknowledged)
        {
            Assert.Equal(path, (await reader.GetSecretAsync(path)).Data["v"]);
        }
        foreach (var node in Group.Nodes)
        {
            var kv = new KvService.KvServiceClient(node.Channel);
            var index = (await NodeGroup.StatusOf(active)).CommitIndex.ToString(System.Globalization.CultureInfo.InvariantCulture);
            foreach (var path in acknowledged.Take(200))
            {
                Assert.Equal(path, (await kv.GetAsync(new GetSecretRequest { Path = path }, Group.Root(new Metadata { { "vault-min-index", index } }))).Data["v"]);
            }
        }
    }
}
