using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Testing;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Cluster;

/// <summary>
/// Vault processes sharing one PostgreSQL database as a group of nodes (<c>Vault:NodeId</c>, a 3 s
/// term), initialised through one of them and unsealed on each: what the several-nodes tests
/// start from.
/// </summary>
internal sealed class NodeGroup : IAsyncDisposable
{
    // Terms a test waits out: short, but three renewals long.
    public const string Term = "00:00:03";
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly HashSet<VaultProcess> _paused = [];

    private NodeGroup(IReadOnlyList<VaultProcess> nodes) => Nodes = nodes;

    public IReadOnlyList<VaultProcess> Nodes { get; }

    public string RootToken { get; private set; } = "";

    /// <summary>Starts <paramref name="count"/> nodes on the database <paramref name="connectionString"/> names, initialised and unsealed.</summary>
    public static async Task<NodeGroup> StartAsync(string directory, string connectionString, int count = 3)
    {
        var connection = Path.Combine(directory, "connection");
        await File.WriteAllTextAsync(connection, connectionString);
        var nodes = new List<VaultProcess>();
        var group = new NodeGroup(nodes);
        try
        {
            for (var i = 1; i <= count; i++)
            {
                var node = new VaultProcess(Path.Combine(directory, $"n{i}"));
                nodes.Add(node);
                await node.StartAsync("--Vault:StorageKind=postgres", $"--Vault:StorageConnectionFile={connection}", $"--Vault:NodeId=n{i}",
                    "--Vault:AdvertiseAddress=127.0.0.1:{port}", $"--Vault:LeaderLeaseTtl={Term}",
                    // A new active node waits this out before it reconciles a rotation left mid-way.
                    "--Vault:Rotation:StatementTimeout=00:00:02");
            }
            // Init on any node: it is forwarded to whichever took the lease.
            var init = await new SystemService.SystemServiceClient(nodes[^1].Channel).InitAsync(
                new InitRequest { Passphrase = TestVault.Passphrase, Kdf = TestVault.FastKdf }, deadline: DateTime.UtcNow.AddSeconds(60));
            group.RootToken = init.RootToken;
            foreach (var node in nodes)
            {
                await Eventually(async () => (await StatusOf(node)).Initialized, $"{node.Address} never saw the vault initialised");
                await new SystemService.SystemServiceClient(node.Channel).UnsealAsync(new UnsealRequest { Passphrase = TestVault.Passphrase }, deadline: DateTime.UtcNow.AddSeconds(60));
            }
            await group.ActiveAsync(nodes);
            return group;
        }
        catch
        {
            await group.DisposeAsync();
            throw;
        }
    }

    public CallOptions Root(Metadata? more = null)
    {
        var headers = new Metadata { { "authorization", $"Bearer {RootToken}" } };
        foreach (var entry in more ?? [])
        {
            headers.Add(entry);
        }
        return new CallOptions(headers, deadline: DateTime.UtcNow.AddSeconds(60));
    }

    /// <summary>Every node's address, <paramref name="first"/> first.</summary>
    public string Addresses(VaultProcess? first = null) =>
        string.Join(",", Nodes.OrderBy(n => n == first ? 0 : 1).Select(n => n.Address));

    public async Task PauseAsync(VaultProcess node)
    {
        await node.PauseAsync();
        _paused.Add(node);
    }

    public async Task ResumeAsync(VaultProcess node)
    {
        await node.ResumeAsync();
        _paused.Remove(node);
    }

    public static async Task<StatusResponse> StatusOf(VaultProcess node) =>
        await new SystemService.SystemServiceClient(node.Channel).StatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(5));

    /// <summary>Polls until <paramref name="condition"/> holds; a node not answering yet counts as not yet.</summary>
    public static Task Eventually(Func<Task<bool>> condition, string failure, TimeSpan? within = null) =>
        Vault.Tests.Client.ClientKit.WaitUntilAsync(async () =>
        {
            try
            {
                return await condition();
            }
            catch (RpcException)
            {
                return false;
            }
        }, within ?? Bound, failure);

    /// <summary>The node among <paramref name="among"/> (all by default) that says it is active, once one does.</summary>
    public async Task<VaultProcess> ActiveAsync(IEnumerable<VaultProcess>? among = null)
    {
        VaultProcess? found = null;
        await Eventually(async () =>
        {
            foreach (var node in among ?? Nodes)
            {
                if ((await StatusOf(node)).Active)
                {
                    found = node;
                    return true;
                }
            }
            return false;
        }, "no node became active");
        return found!;
    }

    /// <summary>
    /// <paramref name="count"/> clients given <paramref name="addresses"/>, each putting <c>load/wN/i</c>
    /// (the path as its value) one after another until <paramref name="stop"/>: what was
    /// acknowledged and what failed.
    /// </summary>
    public WriteLoad StartWriters(string addresses, CancellationToken stop, int count = 4)
    {
        var load = new WriteLoad();
        load.Tasks = [.. Enumerable.Range(0, count).Select(w => Task.Run(async () =>
        {
            using var client = new Vault.Client.VaultClient(new Vault.Client.VaultClientOptions { Address = addresses, Token = RootToken });
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                var path = $"load/w{w}/{n}";
                try
                {
                    await client.PutSecretAsync(path, new Dictionary<string, string> { ["v"] = path });
                    load.Acknowledged.Add(path);
                }
                catch (RpcException ex)
                {
                    load.Errors.Add(ex);
                    await Task.Delay(50);
                }
            }
        }))];
        return load;
    }

    public sealed class WriteLoad
    {
        public System.Collections.Concurrent.ConcurrentBag<string> Acknowledged { get; } = [];

        public System.Collections.Concurrent.ConcurrentBag<RpcException> Errors { get; } = [];

        public Task[] Tasks { get; set; } = [];
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _paused)
        {
            await node.ResumeAsync();
        }
        foreach (var node in Nodes)
        {
            await node.DisposeAsync();
        }
    }
}
