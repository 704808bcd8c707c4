using System.Collections.Concurrent;
using System.Diagnostics;
using Grpc.Core;
using Npgsql;
using Vault.Client;
using Vault.Protocol.V1;
using Vault.Testing;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Cluster;

/// <summary>
/// Three vault processes on one real PostgreSQL database (<c>Vault:NodeId</c>): one active, two
/// standbys that serve reads and forward writes. The active SIGKILLed under load: a standby takes
/// over, nothing acknowledged is lost, a client given every address sees no error (a write whose
/// answer died with the node is sent again under its idempotency key, and made once). The active
/// SIGSTOPped past its term: none of its writes lands after the takeover (checked in the table),
/// and once it runs again it steps down and serves as a standby. A write followed by a read that
/// presents its index sees the write on any node.
/// </summary>
public sealed class SeveralNodesTests(TargetSystems systems, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<TargetSystems>, IAsyncLifetime
{
    private static readonly TimeSpan TakeoverBound = NodeGroup.Bound;
    private readonly string _database = $"vault_nodes_{Guid.NewGuid():N}";
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("vault-nodes-test-");
    private NodeGroup? _group;

    private NodeGroup Group => _group ?? throw new InvalidOperationException("not started");

    private CallOptions Root(Metadata? more = null) => Group.Root(more);

    private static Task<StatusResponse> StatusOf(VaultProcess node) => NodeGroup.StatusOf(node);

    private static Task Eventually(Func<Task<bool>> condition, string failure) => NodeGroup.Eventually(condition, failure);

    private Task<VaultProcess> ActiveAsync(IEnumerable<VaultProcess> among) => Group.ActiveAsync(among);

    public async Task InitializeAsync()
    {
        var server = systems.PostgresServer;
        await server.ExecuteAsync($"CREATE DATABASE {_database}");
        _group = await NodeGroup.StartAsync(_work.FullName, server.ConnectionString(server.SuperUser, server.SuperPassword, _database));
        var active = await Group.ActiveAsync();
        await new KvService.KvServiceClient(active.Channel).PutAsync(new PutSecretRequest { Path = "app/fixed", Data = { ["v"] = "fixed" } }, Root());
    }

    public async Task DisposeAsync()
    {
        await (_group?.DisposeAsync() ?? ValueTask.CompletedTask);
        NpgsqlConnection.ClearAllPools();
        await systems.PostgresServer.ExecuteAsync($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)");
        _work.Delete(recursive: true);
    }

    /// <summary>The paths of the puts a node made itself, as its own audit log records them.</summary>
    private static List<string> OkPuts(VaultProcess node) =>
        [.. AuditDirectory.Files(node.DataDir).SelectMany(File.ReadLines)
            .Select(line => System.Text.Json.JsonDocument.Parse(line).RootElement)
            .Where(e => e.GetProperty("rpc").GetString()!.EndsWith("/Put", StringComparison.Ordinal) && e.GetProperty("outcome").GetString() == "ok")
            .Select(e => e.GetProperty("path").GetString()!)];

    private async Task<List<(string Id, long Changed)>> RowsAsync(string collection, string idLike)
    {
        var server = systems.PostgresServer;
        await using var data = NpgsqlDataSource.Create(server.ConnectionString(server.SuperUser, server.SuperPassword, _database));
        await using var command = data.CreateCommand("SELECT id, changed FROM vault_documents WHERE collection = $1 AND id LIKE $2");
        command.Parameters.AddWithValue(collection);
        command.Parameters.AddWithValue(idLike);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<(string, long)>();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetString(0), reader.GetInt64(1)));
        }
        return rows;
    }

    private async Task<long> ChangedAtAsync(string collection, string idLike)
    {
        var server = systems.PostgresServer;
        await using var data = NpgsqlDataSource.Create(server.ConnectionString(server.SuperUser, server.SuperPassword, _database));
        await using var command = data.CreateCommand("SELECT coalesce(max(changed), 0) FROM vault_documents WHERE collection = $1 AND id LIKE $2");
        command.Parameters.AddWithValue(collection);
        command.Parameters.AddWithValue(idLike);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task TheActiveKilledUnderLoad_AStandbyTakesOver_NothingAcknowledgedIsLost_AndTheClientSeesNoError()
    {
        var active = await ActiveAsync(Group.Nodes);
        var standbys = Group.Nodes.Where(n => n != active).ToArray();
        var addresses = string.Join(",", new[] { active }.Concat(standbys).Select(n => n.Address));
        using var stop = new CancellationTokenSource();
        var load = Group.StartWriters(addresses, stop.Token);
        var acknowledged = load.Acknowledged;
        var writeErrors = load.Errors;
        var writers = load.Tasks;
        var readErrors = new ConcurrentBag<Exception>();
        var reads = 0;
        var reader = Task.Run(async () =>
        {
            using var client = new VaultClient(new VaultClientOptions { Address = addresses, Token = Group.RootToken });
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    Assert.Equal("fixed", (await client.GetSecretAsync("app/fixed")).Data["v"]);
                    Interlocked.Increment(ref reads);
                }
                catch (RpcException ex)
                {
                    readErrors.Add(ex);
                }
            }
        });
        await Eventually(() => Task.FromResult(acknowledged.Count >= 50), "the writers made no progress before the kill");

        var sinceKill = Stopwatch.StartNew();
        await active.KillAsync();
        var successor = await ActiveAsync(standbys);
        var takeover = sinceKill.Elapsed;
        Assert.True(takeover < TakeoverBound, $"no standby was active {takeover} after the kill");
        var atTakeover = acknowledged.Count;
        await Eventually(() => Task.FromResult(acknowledged.Count >= atTakeover + 50), "writes did not resume on the new active node");
        var readsAtTakeover = reads;
        await Eventually(() => Task.FromResult(reads >= readsAtTakeover + 50), "reads did not go on");
        await stop.CancelAsync();
        await Task.WhenAll([.. writers, reader]);

        output.WriteLine($"takeover after {takeover.TotalMilliseconds:F0} ms; {acknowledged.Count} writes acknowledged, {writeErrors.Count} failed; {reads} reads");
        Assert.Empty(readErrors);
        // A write already sent to the killed node was sent again, under its key, to another node:
        // the client saw no error at all.
        Assert.Empty(writeErrors);
        var kv = new KvService.KvServiceClient(successor.Channel);
        foreach (var path in acknowledged)
        {
            Assert.Equal(path, (await kv.GetAsync(new GetSecretRequest { Path = path }, Root())).Data["v"]);
            // Each put made once, even the ones whose first answer died with the node.
            Assert.Equal(1ul, (await kv.GetMetadataAsync(new GetMetadataRequest { Path = path }, Root())).CurrentVersion);
        }
    }

    [Fact]
    public async Task TheActivePausedPastItsTerm_WritesNothingAfterTheTakeover_ThenStepsDownAndServesAsAStandby()
    {
        var active = await ActiveAsync(Group.Nodes);
        var others = Group.Nodes.Where(n => n != active).ToArray();
        var paused = false;
        var resumed = false;
        var inFlight = 0;
        var acknowledged = new ConcurrentBag<string>();
        var refused = new ConcurrentBag<string>();
        // Writers bound to the active node alone: some of their writes are in it when it stops.
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            using var client = new VaultClient(new VaultClientOptions { Address = active.Address, Token = Group.RootToken, Timeout = TimeSpan.FromMinutes(2) });
            for (var n = 0; !Volatile.Read(ref paused); n++)
            {
                var path = $"paused/w{w}/{n}";
                try
                {
                    await client.PutSecretAsync(path, new Dictionary<string, string> { ["v"] = path });
                    acknowledged.Add(path);
                }
                catch (RpcException)
                {
                    refused.Add(path);
                }
                if (Volatile.Read(ref resumed))
                {
                    // Sent before the pause (the loop sends no more after it), answered after it.
                    Interlocked.Increment(ref inFlight);
                }
            }
        })).ToArray();
        await Eventually(() => Task.FromResult(acknowledged.Count >= 50), "the writers made no progress before the pause");

        await Group.PauseAsync(active);
        Volatile.Write(ref paused, true);
        var successor = await ActiveAsync(others);
        // Every commit of the paused node's term is in what the successor read when it took over,
        // before its own first write: the index it logged then.
        // The line reaches the node's log file a moment after its status says active (the logger
        // writes from a queue): wait for it.
        System.Text.RegularExpressions.MatchCollection? promotions = null;
        await Eventually(() =>
        {
            promotions = System.Text.RegularExpressions.Regex.Matches(successor.Output, @"now the active one \(epoch \d+\), from commit (\d+)");
            return Task.FromResult(promotions.Count > 0);
        }, "the successor did not log its takeover");
        var promoted = promotions![^1];
        var takeoverIndex = long.Parse(promoted.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        long markerIndex = 0;
        await Eventually(async () =>
        {
            try
            {
                var marker = new KvService.KvServiceClient(successor.Channel).PutAsync(new PutSecretRequest { Path = "after/takeover", Data = { ["v"] = "successor" } }, Root());
                await marker.ResponseAsync;
                markerIndex = long.Parse((await marker.ResponseHeadersAsync).GetValue("vault-index")!, System.Globalization.CultureInfo.InvariantCulture);
                return true;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
            {
                // A full run once stalled the successor past its term's usable two thirds right
                // after it said it was active: it refuses writes (as it must) until its next
                // renewal, a second later. The takeover is what is tested here, not that stall.
                return false;
            }
        }, "the successor never took the marker write");
        Assert.True(markerIndex > takeoverIndex);

        // Let it run again, with writes of its old term still inside it.
        await Task.Delay(TimeSpan.FromSeconds(1));
        Volatile.Write(ref resumed, true);
        await Group.ResumeAsync(active);
        await Task.WhenAll(writers);
        Assert.True(inFlight > 0, "no write was inside the node while it was paused");

        output.WriteLine($"takeover index {takeoverIndex}; {acknowledged.Count} writes acknowledged, {refused.Count} refused ({string.Join(", ", refused)}), {inFlight} in flight through the pause");
        foreach (var path in refused)
        {
            // A refused write is not in the table at all.
            Assert.Equal(0, await ChangedAtAsync("kv_meta", path));
        }
        // None of its writes landed after the takeover: every row a put it made itself wrote (its own
        // audit log says which: a call it forwarded once resumed is audited by the node that made it)
        // is older than the takeover, in the table. Calls it read only after it resumed, when it was
        // no longer active, it forwarded to the successor, which made them: newer, and in its log.
        var own = OkPuts(active);
        var bySuccessor = OkPuts(successor);
        var rows = await RowsAsync("kv_meta", "paused/%");
        Assert.NotEmpty(own);
        foreach (var (id, changed) in rows)
        {
            if (own.Any(p => p.EndsWith(id, StringComparison.Ordinal)))
            {
                Assert.True(changed <= takeoverIndex, $"{id}, written by the paused node, landed at commit {changed}, after its successor took over at {takeoverIndex}");
            }
            else
            {
                Assert.True(bySuccessor.Any(p => p.EndsWith(id, StringComparison.Ordinal)), $"{id} at commit {changed} was made by neither node's audited call");
            }
        }
        var kv = new KvService.KvServiceClient(successor.Channel);
        foreach (var path in acknowledged)
        {
            Assert.Equal(path, (await kv.GetAsync(new GetSecretRequest { Path = path }, Root())).Data["v"]);
        }

        // It steps down and follows the successor.
        await Eventually(async () => (await StatusOf(active)) is { Active: false } status && status.ActiveAddress == successor.Address.Replace("http://", "", StringComparison.Ordinal),
            "the resumed node did not step down to a standby of its successor");
        var write = new KvService.KvServiceClient(successor.Channel).PutAsync(new PutSecretRequest { Path = "after/resume", Data = { ["v"] = "seen" } }, Root());
        await write.ResponseAsync;
        var index = (await write.ResponseHeadersAsync).GetValue("vault-index")!;
        var read = await new KvService.KvServiceClient(active.Channel).GetAsync(new GetSecretRequest { Path = "after/resume" }, Root(new Metadata { { "vault-min-index", index } }));
        Assert.Equal("seen", read.Data["v"]);
        // And takes writes again, forwarding them.
        using var client = new VaultClient(new VaultClientOptions { Address = active.Address, Token = Group.RootToken });
        await client.PutSecretAsync("after/forwarded", new Dictionary<string, string> { ["v"] = "via the old node" });
        Assert.Equal("via the old node", (await kv.GetAsync(new GetSecretRequest { Path = "after/forwarded" }, Root())).Data["v"]);
    }

    [Fact]
    public async Task ALeaseThatExpiresAfterAFailover_IsEndedByTheNewActiveNode()
    {
        var active = await ActiveAsync(Group.Nodes);
        var standbys = Group.Nodes.Where(n => n != active).ToArray();
        var system = systems.Postgres;
        var admin = await RotationKit.PutAdminSecretAsync(new KvService.KvServiceClient(active.Channel), Root(), system);
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await system.CreateAccountAsync(initial);
        var target = RotationKit.UniqueName("lease-ha");
        await new TargetService.TargetServiceClient(active.Channel).PutTargetAsync(new PutTargetRequest { Target = RotationKit.Describe(system, target, account, admin), CurrentPassword = initial }, Root());
        var role = RotationKit.UniqueName("dyn");
        var leases = new LeaseService.LeaseServiceClient(active.Channel);
        await leases.PutDynamicRoleAsync(new PutDynamicRoleRequest { Role = new DynamicRole { Name = role, Target = target, MaxTtl = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromDays(1)), CreationStatements = { "GRANT CONNECT ON DATABASE postgres TO {{name}}" } } }, Root());
        var ttl = TimeSpan.FromSeconds(30);
        var issuedAt = Stopwatch.StartNew();
        var issued = await leases.IssueCredentialAsync(new IssueCredentialRequest { Role = role, Ttl = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(ttl) }, Root());

        await active.KillAsync();
        var successor = await ActiveAsync(standbys);
        if (issuedAt.Elapsed >= ttl)
        {
            throw new Xunit.Sdk.XunitException($"the takeover took {issuedAt.Elapsed.TotalSeconds:F0} s, past the lease's {ttl.TotalSeconds:F0} s TTL: the machine is too busy for this test to show the new active node ends it");
        }
        Assert.True(await system.CanLoginAsync(issued.Username, issued.Password), "the credential stopped working before its lease expired");

        // Only the new active node reaps: its schedule, built from its own image after the
        // promotion, must hold the lease the dead node issued.
        await Eventually(async () => !await system.CanLoginAsync(issued.Username, issued.Password), "the expired lease's user was not dropped by the new active node");
        await Eventually(async () => (await new LeaseService.LeaseServiceClient(successor.Channel).ListLeasesAsync(new ListLeasesRequest { Prefix = $"dynamic/{role}/" }, Root())).Leases.Count == 0,
            "the expired lease was not ended");
    }

    [Fact]
    public async Task RotationsDueDuringAFailover_EachRunOnce_AndEveryAccountsPasswordLogsIn()
    {
        var active = await ActiveAsync(Group.Nodes);
        var standbys = Group.Nodes.Where(n => n != active).ToArray();
        var system = systems.Postgres;
        var kv = new KvService.KvServiceClient(active.Channel);
        var admin = await RotationKit.PutAdminSecretAsync(kv, Root(), system);
        var interval = TimeSpan.FromSeconds(4);
        var accounts = new Dictionary<string, string>();
        foreach (var i in Enumerable.Range(0, 3))
        {
            var initial = $"Initial-{Guid.NewGuid():N}";
            var account = await system.CreateAccountAsync(initial);
            var name = RotationKit.UniqueName("ha");
            var target = RotationKit.Describe(system, name, account, admin);
            target.Schedule = new RotationSchedule { Interval = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(interval), MaxJitter = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.Zero) };
            await new TargetService.TargetServiceClient(active.Channel).PutTargetAsync(new PutTargetRequest { Target = target, CurrentPassword = initial }, Root());
            accounts[name] = account;
        }
        var before = new Dictionary<string, ulong>();
        foreach (var name in accounts.Keys)
        {
            before[name] = (await RotationKit.WaitForTargetAsync(new TargetService.TargetServiceClient(active.Channel), Root(), name, t => t.Status.Version >= 1, TakeoverBound, "a first scheduled rotation")).Status.Version;
        }

        await active.KillAsync();
        var successor = await ActiveAsync(standbys);
        var targets = new TargetService.TargetServiceClient(successor.Channel);
        foreach (var (name, account) in accounts)
        {
            var settled = await RotationKit.WaitForTargetAsync(targets, Root(), name, t => t.Status.Version >= before[name] + 2 && t.Status.State == TargetState.Ready, TakeoverBound, "rotations on the new active node");
            var history = await RotationKit.HistoryAsync(targets, Root(), name);
            var changes = history.Where(e => e.Outcome is RotationOutcome.Succeeded or RotationOutcome.Recovered).OrderBy(e => e.Id).ToList();
            // Each rotation moved the version by one: none ran twice (two runs of one due time
            // would be two changes of the password), none was lost.
            Assert.Equal(Enumerable.Range(1, changes.Count).Select(v => (ulong)v), changes.Select(e => e.Version));
            Assert.DoesNotContain(history, e => e.Outcome == RotationOutcome.Failed && e.Reason.Contains("log", StringComparison.OrdinalIgnoreCase) && e.Step == "test");
            // Scheduled runs of one target are an interval apart (the one due during the failover
            // ran once, late), never two for one due time.
            var scheduled = changes.Where(e => e.Trigger == "scheduled").Select(e => e.StartedAt.ToDateTimeOffset()).ToList();
            for (var k = 1; k < scheduled.Count; k++)
            {
                Assert.True(scheduled[k] - scheduled[k - 1] >= interval / 2, $"{name}: two scheduled rotations {scheduled[k] - scheduled[k - 1]} apart");
            }
            Assert.NotEqual(TargetState.NeedsAttention, settled.Status.State);
            var credential = await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, Root());
            Assert.True(await system.CanLoginAsync(account, credential.Password), $"{name}: the password the vault holds does not log in as {account}");
        }
    }

    [Fact]
    public async Task AWriteThenAReadWithItsIndex_SeesTheWrite_OnEveryNode()
    {
        var active = await ActiveAsync(Group.Nodes);
        var standbys = Group.Nodes.Where(n => n != active).ToArray();
        var onActive = new KvService.KvServiceClient(active.Channel);
        for (var i = 0; i < 40; i++)
        {
            var write = onActive.PutAsync(new PutSecretRequest { Path = "ryw/direct", Data = { ["v"] = $"{i}" } }, Root());
            await write.ResponseAsync;
            var index = (await write.ResponseHeadersAsync).GetValue("vault-index")!;
            foreach (var standby in standbys)
            {
                var read = await new KvService.KvServiceClient(standby.Channel).GetAsync(new GetSecretRequest { Path = "ryw/direct" }, Root(new Metadata { { "vault-min-index", index } }));
                Assert.Equal($"{i}", read.Data["v"]);
            }
        }

        // A client of one standby alone: its writes are forwarded, its reads served there, and
        // each read sees the write before it (the client presents the index itself).
        using var client = new VaultClient(new VaultClientOptions { Address = standbys[0].Address, Token = Group.RootToken });
        for (var i = 0; i < 40; i++)
        {
            await client.PutSecretAsync("ryw/client", new Dictionary<string, string> { ["v"] = $"{i}" });
            Assert.Equal($"{i}", (await client.GetSecretAsync("ryw/client")).Data["v"]);
        }
        var status = await StatusOf(standbys[0]);
        Assert.False(status.Active);

        // Each node keeps its own audit chain; vaultctl given every address checks each of them.
        var verified = (await new Vault.Tests.Cli.VaultCtl(Group.Addresses(), Group.RootToken).RunAsync("audit", "verify")).Ok();
        foreach (var node in Group.Nodes)
        {
            Assert.Contains($"{node.Address}: audit log intact", verified, StringComparison.Ordinal);
        }
        Assert.Equal("n" + (Group.Nodes.ToList().IndexOf(standbys[0]) + 1), status.NodeId);
    }
}
