using Grpc.Core;
using Grpc.Health.V1;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Vault.Protocol.V1;
using Vault.Server;
using Vault.Server.Storage;
using Vault.Tests.Cli;
using Vault.Tests.Client;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Storage;

/// <summary>
/// A full disk, on a real filesystem that fills up (a small tmpfs): writes are refused
/// RESOURCE_EXHAUSTED saying so, health says NOT_SERVING, reads go on, the refusals are audited in
/// the space held back for them, nothing acknowledged is lost, and writes come back by themselves
/// once space is freed. A start on a full disk is one line and a non-zero exit.
/// </summary>
public sealed class DiskFullTests
{
    private const long Reserve = 2L * 1024 * 1024;

    [Fact]
    public async Task AFullDisk_RefusesWrites_ServesAndAuditsReads_AndWritesResumeOnceSpaceIsFreed_WithoutARestart()
    {
        using var disk = SmallFilesystem.Mount(48L * 1024 * 1024);
        var dataDir = Path.Combine(disk.Path, "data");
        await using var vault = await TestVault.StartInitializedInAsync(dataDir, $"--Vault:ReservedDiskBytes={Reserve}");
        await vault.UnsealAsync();
        Assert.Equal(Reserve, new FileInfo(Path.Combine(dataDir, DiskReserve.FileName)).Length);
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "disk/kept", Data = { ["v"] = "before" } }, vault.As());
        var health = new Health.HealthClient(vault.Channel);
        var audit = new AuditService.AuditServiceClient(vault.Channel);
        // Nothing left for the applier to move into the data file while the disk fills: a disk that
        // fills in the moment between the applier's free-space check and LiteDB's write stops the
        // store until a restart (LiteDB cannot be trusted after a failed write), which a full run
        // once caught here as the first write answered "internal error". That case now answers
        // UNAVAILABLE (the mapping is held by ErrorStatusTests); this test is about the disk filling
        // between writes, which is refused and recovers without a restart.
        vault.FlushStore();

        disk.Fill();

        // The last blocks of the open files may still take a write or two (filesystems allocate
        // whole blocks); the disk is out of room within a few.
        var acknowledged = new List<string>();
        RpcException? refused = null;
        for (var i = 0; i < 200 && refused is null; i++)
        {
            try
            {
                await vault.Kv.PutAsync(new PutSecretRequest { Path = $"disk/w{i}", Data = { ["v"] = $"w{i}" } }, vault.As());
                acknowledged.Add($"disk/w{i}");
            }
            catch (RpcException ex)
            {
                Assert.True(ex.StatusCode == StatusCode.ResourceExhausted, $"write {i} on a full disk: {ex.Status}");
                refused = ex;
            }
        }
        Assert.NotNull(refused);
        Assert.Contains("disk full", refused!.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("disk full", (await vault.System.StatusAsync(new StatusRequest())).StorageFailure, StringComparison.Ordinal);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, (await health.CheckAsync(new HealthCheckRequest())).Status);
        Assert.Matches("(?m)^Storage Failure +disk full", (await new VaultCtl(vault.Address).RunAsync("operator", "status")).Ok());
        // Reads are served (and audited, in the space given back by the reserve); nothing of the refused write applied.
        Assert.Equal("before", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "disk/kept" }, vault.As())).Data["v"]);
        await Rpc.FailsWith(StatusCode.NotFound, () => vault.Kv.GetAsync(new GetSecretRequest { Path = $"disk/w{acknowledged.Count}" }, vault.As()));
        // Every kind of write is refused alike, before it reaches the disk.
        await Rpc.FailsWith(StatusCode.ResourceExhausted, () => vault.Kv.PutAsync(new PutSecretRequest { Path = "disk/refused", Data = { ["v"] = "lost" } }, vault.As()));
        await Rpc.FailsWith(StatusCode.ResourceExhausted, () => vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "disk", Rules = { new PolicyRule { Path = "kv/disk/*", Capabilities = { "read" } } } } }, vault.As()));
        var tail = (await audit.TailAsync(new TailAuditRequest { Limit = 20 }, vault.As())).Entries;
        Assert.Contains(tail, e => e.Path == $"kv/disk/w{acknowledged.Count}" && e.Outcome == "error" && e.ErrorCode == "ResourceExhausted");
        Assert.Contains(tail, e => e.Path == "kv/disk/refused" && e.Outcome == "error" && e.ErrorCode == "ResourceExhausted");
        Assert.Contains(tail, e => e.Path == "kv/disk/kept" && e.Outcome == "ok" && e.Rpc.EndsWith("/Get", StringComparison.Ordinal));

        disk.Free();

        await ClientKit.WaitUntilAsync(async () => (await health.CheckAsync(new HealthCheckRequest())).Status == HealthCheckResponse.Types.ServingStatus.Serving, TimeSpan.FromSeconds(30), "health to serve again once space was freed");
        Assert.Empty((await vault.System.StatusAsync(new StatusRequest())).StorageFailure);
        Assert.DoesNotContain("Storage Failure", (await new VaultCtl(vault.Address).RunAsync("operator", "status")).Ok(), StringComparison.Ordinal);
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "disk/after", Data = { ["v"] = "after" } }, vault.As());
        Assert.Equal(Reserve, new FileInfo(Path.Combine(dataDir, DiskReserve.FileName)).Length);
        var verdict = await audit.VerifyAsync(new VerifyAuditRequest(), vault.As());
        Assert.True(verdict.Ok, verdict.Reason);

        // What was acknowledged survives a restart; what was refused never existed.
        await vault.RestartAsync();
        await vault.UnsealAsync();
        Assert.Equal("before", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "disk/kept" }, vault.As())).Data["v"]);
        Assert.Equal("after", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "disk/after" }, vault.As())).Data["v"]);
        foreach (var path in acknowledged)
        {
            Assert.Equal(path[5..], (await vault.Kv.GetAsync(new GetSecretRequest { Path = path }, vault.As())).Data["v"]);
        }
        await Rpc.FailsWith(StatusCode.NotFound, () => vault.Kv.GetAsync(new GetSecretRequest { Path = $"disk/w{acknowledged.Count}" }, vault.As()));
        await Rpc.FailsWith(StatusCode.NotFound, () => vault.Kv.GetAsync(new GetSecretRequest { Path = "disk/refused" }, vault.As()));
        verdict = await new AuditService.AuditServiceClient(vault.Channel).VerifyAsync(new VerifyAuditRequest(), vault.As());
        Assert.True(verdict.Ok, verdict.Reason);
    }

    private sealed class Blob
    {
        public string Value { get; set; } = "";
    }

    [Fact]
    public async Task AcknowledgedWrites_ThatTheDataFileHasNoRoomFor_StayReadable_AndReachItOnceSpaceIsFreed()
    {
        using var disk = SmallFilesystem.Mount(16L * 1024 * 1024);
        var dir = Path.Combine(disk.Path, "data");
        var clock = new FakeTimeProvider();
        var reserve = new DiskReserve(dir, 0, clock, NullLogger<DiskReserve>.Instance);
        var values = Enumerable.Range(0, 8).Select(i => new string((char)('a' + i), 200 * 1024)).ToArray();
        // The applier never runs by itself here: Flush is its pass, when the test says.
        using (var store = new LiteDbStore(dir, NullLogger<LiteDbStore>.Instance, [typeof(Blob)], ["blobs"], 0, TimeSpan.FromHours(1), reserve))
        {
            for (var i = 0; i < values.Length; i++)
            {
                var value = values[i];
                var id = $"b{i}";
                await store.WriteAsync(tx =>
                {
                    tx.Put("blobs", id, new Blob { Value = value });
                    return true;
                }, CancellationToken.None);
            }
            disk.Fill();

            store.Flush();

            Assert.True(reserve.IsFull, "moving the writes into a full data file did not put the store in the disk-full state");
            for (var i = 0; i < values.Length; i++)
            {
                Assert.Equal(values[i], store.Get<Blob>("blobs", $"b{i}")?.Value);
            }
            await Assert.ThrowsAsync<DiskFullException>(() => store.WriteAsync(tx =>
            {
                tx.Put("blobs", "refused", new Blob { Value = "x" });
                return true;
            }, CancellationToken.None));

            disk.Free();
            clock.Advance(TimeSpan.FromSeconds(2));
            store.Flush();

            Assert.False(reserve.IsFull, reserve.Failure);
            // The segments holding the writes are gone: they are in the data file now, not only in the log.
            Assert.All(Directory.GetFiles(dir, "wal-*.log"), segment => Assert.Equal(0, new FileInfo(segment).Length));
            await store.WriteAsync(tx =>
            {
                tx.Put("blobs", "after", new Blob { Value = "after" });
                return true;
            }, CancellationToken.None);
        }
        using var reopened = new LiteDbStore(dir, NullLogger<LiteDbStore>.Instance, [typeof(Blob)], ["blobs"]);
        for (var i = 0; i < values.Length; i++)
        {
            Assert.Equal(values[i], reopened.Get<Blob>("blobs", $"b{i}")?.Value);
        }
        Assert.Equal("after", reopened.Get<Blob>("blobs", "after")?.Value);
        Assert.Null(reopened.Get<Blob>("blobs", "refused"));
    }

    private sealed class RecordingParticipant : ICommitParticipant
    {
        public int Before { get; private set; }

        public int Failed { get; private set; }

        public void BeforeCommit(IReadOnlyList<object> tags, IStoreWriter writer) => Before++;

        public void CommitFailed(IReadOnlyList<object> tags) => Failed++;
    }

    [Fact]
    public async Task ALogAppendTheDiskRefuses_AppliesNothing_LeavesNoFragment_TellsTheParticipant_AndTheStoreGoesOn()
    {
        using var disk = SmallFilesystem.Mount(16L * 1024 * 1024);
        var dir = Path.Combine(disk.Path, "data");
        var clock = new FakeTimeProvider();
        var reserve = new DiskReserve(dir, 1024 * 1024, clock, NullLogger<DiskReserve>.Instance);
        var participant = new RecordingParticipant();
        using (var store = new LiteDbStore(dir, NullLogger<LiteDbStore>.Instance, [typeof(Blob)], ["blobs"], 0, TimeSpan.FromHours(1), reserve))
        {
            store.Enlist(participant);
            Task Put(string id, string value)
            {
                CommitContext.Current = id;
                return store.WriteAsync(tx =>
                {
                    tx.Put("blobs", id, new Blob { Value = value });
                    return true;
                }, CancellationToken.None);
            }
            await Put("small", "kept");
            var segment = Assert.Single(Directory.GetFiles(dir, "wal-*.log"));
            var logLength = new FileInfo(segment).Length;
            disk.Fill();

            await Assert.ThrowsAsync<DiskFullException>(() => Put("large", new string('x', 4 * 1024 * 1024)));

            Assert.True(reserve.IsFull);
            Assert.Equal((2, 1), (participant.Before, participant.Failed));
            Assert.Equal(logLength, new FileInfo(segment).Length);
            Assert.Null(store.Get<Blob>("blobs", "large"));
            Assert.False(File.Exists(Path.Combine(dir, DiskReserve.FileName)), "the reserve was not given up");
            await Assert.ThrowsAsync<DiskFullException>(() => Put("next", "refused before it reaches the disk"));
            Assert.Equal(2, participant.Before);

            disk.Free();
            clock.Advance(TimeSpan.FromSeconds(2));
            store.Flush();
            Assert.False(reserve.IsFull, reserve.Failure);
            await Put("after", "taken");
        }
        using var reopened = new LiteDbStore(dir, NullLogger<LiteDbStore>.Instance, [typeof(Blob)], ["blobs"]);
        Assert.Equal("kept", reopened.Get<Blob>("blobs", "small")?.Value);
        Assert.Equal("taken", reopened.Get<Blob>("blobs", "after")?.Value);
        Assert.Null(reopened.Get<Blob>("blobs", "large"));
        Assert.Null(reopened.Get<Blob>("blobs", "next"));
    }

    [Fact]
    public async Task StartingOnAFullDisk_IsOneLineAndANonZeroExit()
    {
        using var disk = SmallFilesystem.Mount(8L * 1024 * 1024);
        var dataDir = Path.Combine(disk.Path, "data");
        Directory.CreateDirectory(dataDir);
        disk.Fill();

        var exited = await VaultProcess.RunToExitAsync(new Dictionary<string, string>(), "--data-dir", dataDir, "--listen", "127.0.0.1:0");

        Assert.NotEqual(0, exited.ExitCode);
        var lines = exited.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line, got:\n{exited.Stderr}\n{exited.Stdout}");
        Assert.StartsWith("vault: disk full", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain(" at ", exited.Stdout + exited.Stderr, StringComparison.Ordinal);
    }
}
