using Grpc.Core;
using Google.Protobuf.WellKnownTypes;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Leases;

/// <summary>Dynamic database users under leases, against real PostgreSQL and MariaDB.</summary>
public sealed class DynamicCredentialTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    public static TheoryData<string> Kinds() => new() { "postgres", "mysql" };

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Credential_LogsInWhileItsLeaseLives_AndAfterRevokeIsRefused_AndTheUserIsGone(string kind)
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var role = await RoleAsync(vault, kind);
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);

        var issued = await leases.IssueCredentialAsync(new IssueCredentialRequest { Role = role, Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(10)) }, vault.As());

        Assert.Equal(LeaseState.Active, issued.Lease.State);
        Assert.StartsWith($"dynamic/{role}/", issued.Lease.Id, StringComparison.Ordinal);
        Assert.True(await systems.Get(kind).CanLoginAsync(issued.Username, issued.Password), "the dynamic credential does not log in");
        Assert.True(await UserExistsAsync(kind, issued.Username));
        var listed = await leases.ListLeasesAsync(new ListLeasesRequest { Prefix = $"dynamic/{role}/" }, vault.As());
        Assert.Equal(issued.Lease.Id, Assert.Single(listed.Leases).Id);
        Assert.DoesNotContain(issued.Password, listed.ToString(), StringComparison.Ordinal);

        var revoked = await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = issued.Lease.Id }, vault.As());

        Assert.Equal(LeaseState.Revoked, revoked.State);
        Assert.False(await systems.Get(kind).CanLoginAsync(issued.Username, issued.Password), "the credential still logs in after revoke");
        Assert.False(await UserExistsAsync(kind, issued.Username), "the user still exists after revoke");
        var gone = await Assert.ThrowsAsync<RpcException>(async () => await leases.LookupLeaseAsync(new LookupLeaseRequest { LeaseId = issued.Lease.Id }, vault.As()));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        DataDirectoryScan.AssertNoneAppear(vault.DataDir, [issued.Password]);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Credential_AfterItsLeaseExpires_IsRefused_AndTheUserIsGone(string kind)
    {
        await using var vault = await TestVault.StartInitializedAsync("--Vault:Leases:ReaperInterval=00:00:00.500");
        var role = await RoleAsync(vault, kind);
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        var issued = await leases.IssueCredentialAsync(new IssueCredentialRequest { Role = role, Ttl = Duration.FromTimeSpan(TimeSpan.FromSeconds(2)) }, vault.As());
        Assert.True(await systems.Get(kind).CanLoginAsync(issued.Username, issued.Password));

        await WaitUntilAsync(async () => !await UserExistsAsync(kind, issued.Username), TimeSpan.FromSeconds(20), "the expired lease's user to be dropped");

        Assert.False(await systems.Get(kind).CanLoginAsync(issued.Username, issued.Password));
        // The lease record is deleted just after its user is dropped (never before: a crash between
        // the two leaves a lease to retry, not a user nobody ends), so the list can lag the drop.
        await WaitUntilAsync(async () => (await leases.ListLeasesAsync(new ListLeasesRequest { Prefix = $"dynamic/{role}/" }, vault.As())).Leases.Count == 0, TimeSpan.FromSeconds(20), "the expired lease to be deleted after its user");
    }

    [Fact]
    public async Task Leases_OutstandingWhenTheServerIsKilled_AreRevokedAfterARestartPastTheirExpiry()
    {
        var dataDir = Directory.CreateTempSubdirectory("vault-lease-crash-").FullName;
        await using var server = new VaultProcess(dataDir);
        await server.StartAsync("--Vault:Leases:ReaperInterval=00:00:00.500");
        var init = await new SystemService.SystemServiceClient(server.Channel).InitAsync(new InitRequest { Passphrase = TestVault.Passphrase, Kdf = TestVault.FastKdf });
        var auth = new CallOptions(new Metadata { { "authorization", "Bearer " + init.RootToken } });
        var users = new List<(string Kind, string Username, string Password)>();
        var roles = new List<(string Kind, string Role)>();
        foreach (var kind in new[] { "postgres", "mysql" })
        {
            roles.Add((kind, await RoleAsync(new KvService.KvServiceClient(server.Channel), new TargetService.TargetServiceClient(server.Channel),
                new LeaseService.LeaseServiceClient(server.Channel), auth, kind)));
        }
        // Issued together just before the kill, and their TTL checked against how long that took:
        // a lease that expired (and was revoked) while the others were still being issued would
        // not show what this test is about, and a busy machine can take seconds to issue six.
        var ttl = TimeSpan.FromSeconds(5);
        var started = System.Diagnostics.Stopwatch.StartNew();
        foreach (var (kind, role) in roles)
        {
            for (var i = 0; i < 3; i++)
            {
                var issued = await new LeaseService.LeaseServiceClient(server.Channel).IssueCredentialAsync(
                    new IssueCredentialRequest { Role = role, Ttl = Duration.FromTimeSpan(ttl) }, auth);
                users.Add((kind, issued.Username, issued.Password));
            }
        }

        await server.KillAsync();
        var issuing = started.Elapsed;
        // Past the last lease's expiry while the server is down.
        await Task.Delay(ttl + TimeSpan.FromSeconds(1));
        if (issuing >= ttl)
        {
            // Some expired while the server still ran, and its reaper may have ended them: run
            // again on a less busy machine, rather than pass without checking the restart.
            throw new Xunit.Sdk.XunitException($"issuing six leases took {issuing.TotalSeconds:F1} s, longer than their {ttl.TotalSeconds:F0} s TTL: the machine is too busy for this test");
        }
        foreach (var (kind, username, password) in users)
        {
            // Nobody revoked them yet: the server was down when they expired (PostgreSQL's own
            // VALID UNTIL is the lease's max TTL, a day away).
            Assert.True(await UserExistsAsync(kind, username));
        }

        await server.StartAsync("--Vault:Leases:ReaperInterval=00:00:00.500");
        await new SystemService.SystemServiceClient(server.Channel).UnsealAsync(new UnsealRequest { Passphrase = TestVault.Passphrase });

        foreach (var (kind, username, password) in users)
        {
            await WaitUntilAsync(async () => !await UserExistsAsync(kind, username), TimeSpan.FromSeconds(30), $"{kind} user {username} to be dropped after restart");
            Assert.False(await systems.Get(kind).CanLoginAsync(username, password));
        }
    }

    [Fact]
    public async Task Lease_DiesWithTheTokenThatTookIt()
    {
        await using var vault = await TestVault.StartInitializedAsync("--Vault:Leases:ReaperInterval=00:00:00.500");
        var role = await RoleAsync(vault, "postgres");
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "app", Rules = { new PolicyRule { Path = $"lease/creds/{role}", Capabilities = { "read" } } } } }, vault.As());
        var app = await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "app" } }, vault.As());
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        var issued = await leases.IssueCredentialAsync(new IssueCredentialRequest { Role = role }, vault.As(app.Token));
        // The holder may renew and look up its own lease without any lease/id policy.
        var renewed = await leases.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = issued.Lease.Id, Increment = Duration.FromTimeSpan(TimeSpan.FromMinutes(5)) }, vault.As(app.Token));
        Assert.Equal(LeaseState.Active, renewed.State);

        await vault.Tokens.RevokeAsync(new RevokeTokenRequest { Accessor = app.Info.Accessor }, vault.As());

        await WaitUntilAsync(async () => !await UserExistsAsync("postgres", issued.Username), TimeSpan.FromSeconds(20), "the user of a revoked token's lease to be dropped");
        Assert.False(await systems.Postgres.CanLoginAsync(issued.Username, issued.Password));
    }

    [Fact]
    public async Task Renew_NeverPassesTheMaxTtl()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var role = await RoleAsync(vault, "postgres", maxTtl: TimeSpan.FromMinutes(10));
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        var issued = await leases.IssueCredentialAsync(new IssueCredentialRequest { Role = role, Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(1)) }, vault.As());

        var renewed = await leases.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = issued.Lease.Id, Increment = Duration.FromTimeSpan(TimeSpan.FromHours(5)) }, vault.As());

        Assert.Equal(issued.Lease.MaxExpiresAt, renewed.ExpiresAt);
        await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = issued.Lease.Id }, vault.As());
    }

    [Fact]
    public async Task Renew_WithTheRolesDefault_RefusesARoleRecordAlteredOnDisk()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var role = await RoleAsync(vault, "postgres", maxTtl: TimeSpan.FromHours(10));
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        var issued = await leases.IssueCredentialAsync(new IssueCredentialRequest { Role = role, Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(1)) }, vault.As());
        var renewed = await leases.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = issued.Lease.Id }, vault.As());
        Assert.True(renewed.ExpiresAt < issued.Lease.MaxExpiresAt, "the role's default (one hour) already reaches the max");

        // Someone with the data file raises the role's default TTL, so a renewal without an
        // increment would run to the lease's max.
        await vault.RestartAsync(() =>
        {
            using var db = new LiteDB.LiteDatabase(new LiteDB.ConnectionString { Filename = Path.Combine(vault.DataDir, "vault.db"), Connection = LiteDB.ConnectionType.Direct });
            var roles = db.GetCollection(Server.Storage.Collections.DynamicRoles);
            var record = roles.FindById(role);
            Assert.NotNull(record);
            record["DefaultTtlSeconds"] = (long)TimeSpan.FromHours(10).TotalSeconds;
            Assert.True(roles.Update(record));
        });
        await vault.UnsealAsync();
        leases = new LeaseService.LeaseServiceClient(vault.Channel);

        await Rpc.FailsWith(StatusCode.DataLoss, () => leases.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = issued.Lease.Id }, vault.As()));
        var after = await leases.LookupLeaseAsync(new LookupLeaseRequest { LeaseId = issued.Lease.Id }, vault.As());
        Assert.Equal(renewed.ExpiresAt, after.ExpiresAt);
        await leases.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = issued.Lease.Id, Increment = Duration.FromTimeSpan(TimeSpan.FromMinutes(5)) }, vault.As());
        await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = issued.Lease.Id }, vault.As());
    }

    [Fact]
    public async Task BadInput_GetsAClearStatus_AndChangesNothing()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var role = await RoleAsync(vault, "postgres", maxTtl: TimeSpan.FromMinutes(10));
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);

        var overMax = await Assert.ThrowsAsync<RpcException>(async () =>
            await leases.IssueCredentialAsync(new IssueCredentialRequest { Role = role, Ttl = Duration.FromTimeSpan(TimeSpan.FromHours(1)) }, vault.As()));
        Assert.Equal(StatusCode.InvalidArgument, overMax.StatusCode);
        Assert.StartsWith("ttl:", overMax.Status.Detail, StringComparison.Ordinal);

        var unknown = await Assert.ThrowsAsync<RpcException>(async () => await leases.IssueCredentialAsync(new IssueCredentialRequest { Role = "no-such-role" }, vault.As()));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("no-such-role", unknown.Status.Detail, StringComparison.Ordinal);
        Assert.Empty((await leases.ListLeasesAsync(new ListLeasesRequest(), vault.As())).Leases);

        // A lease someone else holds cannot be revoked without lease/id policy.
        var issued = await leases.IssueCredentialAsync(new IssueCredentialRequest { Role = role }, vault.As());
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "other", Rules = { new PolicyRule { Path = $"lease/creds/{role}", Capabilities = { "read" } } } } }, vault.As());
        var other = await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "other" } }, vault.As());
        var notHeld = await Assert.ThrowsAsync<RpcException>(async () => await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = issued.Lease.Id }, vault.As(other.Token)));
        Assert.Equal(StatusCode.PermissionDenied, notHeld.StatusCode);
        Assert.Contains(issued.Lease.Id, notHeld.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(LeaseState.Active, (await leases.LookupLeaseAsync(new LookupLeaseRequest { LeaseId = issued.Lease.Id }, vault.As())).State);
        Assert.True(await systems.Postgres.CanLoginAsync(issued.Username, issued.Password));

        var badRole = await Assert.ThrowsAsync<RpcException>(async () =>
            await leases.PutDynamicRoleAsync(new PutDynamicRoleRequest { Role = new DynamicRole { Name = "r2", Target = "no-such-target" } }, vault.As()));
        Assert.Equal(StatusCode.InvalidArgument, badRole.StatusCode);
        Assert.StartsWith("role.target:", badRole.Status.Detail, StringComparison.Ordinal);

        await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = issued.Lease.Id }, vault.As());
    }

    [Fact]
    public async Task RevocationThatKeepsFailing_BacksOff_ThenIsMarkedIrrevocable_AndTheApiStaysResponsive()
    {
        await using var pg = await PostgresServer.StartAsync();
        var system = new PostgresSystem(pg);
        await using var vault = await TestVault.StartInitializedAsync(
            "--Vault:Leases:ReaperInterval=00:00:00.200", "--Vault:Leases:RevokeRetryBase=00:00:00.500", "--Vault:Leases:MaxRevokeAttempts=3");
        var admin = await RotationKit.PutAdminSecretAsync(vault.Kv, vault.As(), system);
        var account = await system.CreateAccountAsync("Unused-Account-1");
        var target = RotationKit.UniqueName("down");
        await vault.Targets().PutTargetAsync(new PutTargetRequest { Target = RotationKit.Describe(system, target, account, admin), CurrentPassword = "Unused-Account-1" }, vault.As());
        var role = RotationKit.UniqueName("dyn");
        await new LeaseService.LeaseServiceClient(vault.Channel).PutDynamicRoleAsync(new PutDynamicRoleRequest
        {
            Role = new DynamicRole { Name = role, Target = target, CreationStatements = { "GRANT CONNECT ON DATABASE postgres TO {{name}}" } },
        }, vault.As());
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        var issued = await leases.IssueCredentialAsync(new IssueCredentialRequest { Role = role }, vault.As());

        using var events = await Telemetry.EventWatch.StartAsync(vault.Channel, vault.As(), "lease.");
        await pg.StopAsync();
        var first = await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = issued.Lease.Id }, vault.As());
        Assert.Equal(LeaseState.Revoking, first.State);
        Assert.Equal(1U, first.RevokeAttempts);
        Assert.False(string.IsNullOrEmpty(first.LastError));

        Lease? last = null;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((last = await leases.LookupLeaseAsync(new LookupLeaseRequest { LeaseId = issued.Lease.Id }, vault.As())).State != LeaseState.Irrevocable)
        {
            Assert.True(DateTime.UtcNow < deadline, $"never marked irrevocable: {last}");
            // Meanwhile the API answers at once.
            await vault.Kv.PutAsync(new PutSecretRequest { Path = "still/answering", Data = { ["v"] = "1" } }, vault.As().WithDeadline(DateTime.UtcNow.AddSeconds(5)));
            await Task.Delay(100);
        }
        Assert.Equal(3U, last.RevokeAttempts);
        // A bot watching lease events saw each failure, then the lease left for an admin: which lease, which user, why; no password.
        var seen = new[] { await events.NextAsync(), await events.NextAsync(), await events.NextAsync() };
        Assert.Equal(["lease.revocation_failed", "lease.revocation_failed", "lease.irrevocable"], seen.Select(e => e.Type));
        Assert.All(seen, e => Assert.Equal((issued.Lease.Id, issued.Username, target), (e.Attributes["lease_id"], e.Attributes["username"], e.Attributes["target"])));
        Assert.Equal("3", seen[2].Attributes["attempts"]);
        Assert.False(string.IsNullOrEmpty(seen[2].Attributes["reason"]));
        Assert.All(seen, e => Assert.DoesNotContain(issued.Password, e.ToString(), StringComparison.Ordinal));
        var listed = Assert.Single((await leases.ListLeasesAsync(new ListLeasesRequest { Prefix = $"dynamic/{role}/" }, vault.As())).Leases);
        Assert.Equal(LeaseState.Irrevocable, listed.State);

        // Once the database is back, an admin's revoke finishes the job.
        await pg.RestartAsync();
        var done = await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = issued.Lease.Id }, vault.As());
        Assert.Equal(LeaseState.Revoked, done.State);
        Assert.False(await pg.CanLoginAsync(issued.Username, issued.Password));
    }

    [Fact]
    public async Task LeasesExpiringTogether_AreEndedWhenTheyExpire_NotAnIntervalLater_AndOneUserTheDatabaseKeeps_IsRetriedAlone()
    {
        // An hour between passes: the leases below end only if the reaper wakes when they expire.
        await using var vault = await TestVault.StartInitializedAsync("--Vault:Leases:ReaperInterval=01:00:00", "--Vault:Leases:RevokeRetryBase=00:00:00.500");
        var role = await RoleAsync(vault, "postgres");
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        IssuedCredential stuck;
        var other = $"other_{Guid.NewGuid():N}"[..20];
        await systems.PostgresServer.ExecuteAsync($"CREATE DATABASE {other}");
        try
        {
            var issued = new List<IssuedCredential>();
            var ttl = Duration.FromTimeSpan(TimeSpan.FromSeconds(10));
            for (var i = 0; i < 6; i++)
            {
                issued.Add(await leases.IssueCredentialAsync(new IssueCredentialRequest { Role = role, Ttl = ttl }, vault.As()));
            }
            // One of them holds a privilege in another database, which DROP OWNED here cannot revoke:
            // PostgreSQL refuses to drop it (2BP01), and must not keep the others.
            stuck = issued[3];
            await using (var elsewhere = new Npgsql.NpgsqlConnection(systems.PostgresServer.ConnectionString(systems.PostgresServer.SuperUser, systems.PostgresServer.SuperPassword, other)))
            {
                await elsewhere.OpenAsync();
                await using var grant = new Npgsql.NpgsqlCommand($"CREATE TABLE kept (v int); GRANT SELECT ON kept TO {stuck.Username}", elsewhere);
                await grant.ExecuteNonQueryAsync();
            }
            Assert.True(await UserExistsAsync("postgres", stuck.Username), "the leases ended before the test could set up the refusal (machine too slow for a 10 s TTL)");

            foreach (var lease in issued.Where(l => l != stuck))
            {
                await WaitUntilAsync(async () => !await UserExistsAsync("postgres", lease.Username), TimeSpan.FromSeconds(30), $"the expired lease's user {lease.Username} to be dropped");
                Assert.False(await systems.Postgres.CanLoginAsync(lease.Username, lease.Password));
            }
            await WaitUntilAsync(async () => (await leases.ListLeasesAsync(new ListLeasesRequest { Prefix = $"dynamic/{role}/" }, vault.As())).Leases.Count == 1, TimeSpan.FromSeconds(30), "the ended leases to be deleted");
            var left = Assert.Single((await leases.ListLeasesAsync(new ListLeasesRequest { Prefix = $"dynamic/{role}/" }, vault.As())).Leases);
            Assert.Equal(stuck.Lease.Id, left.Id);
            Assert.Equal(LeaseState.Revoking, left.State);
            Assert.Contains("2BP01", left.LastError, StringComparison.Ordinal);
            Assert.False(await systems.Postgres.CanLoginAsync(stuck.Username, stuck.Password), "the user the database keeps still logs in");
        }
        finally
        {
            await systems.PostgresServer.ExecuteAsync($"DROP DATABASE {other} WITH (FORCE)");
        }
        // With the privilege gone, the retry (on its own backoff, not the hour) drops it.
        await WaitUntilAsync(async () => !await UserExistsAsync("postgres", stuck.Username), TimeSpan.FromSeconds(30), "the retried user to be dropped");
        await WaitUntilAsync(async () => (await leases.ListLeasesAsync(new ListLeasesRequest { Prefix = $"dynamic/{role}/" }, vault.As())).Leases.Count == 0, TimeSpan.FromSeconds(30), "its lease to be deleted");
    }

    [Fact]
    public async Task ALeaseThatExpiresWhileItsUserIsBeingCreated_StillEndsWithTheUserDropped()
    {
        await using var vault = await TestVault.StartInitializedAsync("--Vault:Leases:ReaperInterval=00:00:00.300");
        var role = await RoleAsync(vault, "postgres", statements: ["GRANT CONNECT ON DATABASE postgres TO {{name}}", "SELECT pg_sleep(3)"]);
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);

        // The lease's 1 s runs out while the (slow) creation is still going on.
        var issued = await leases.IssueCredentialAsync(new IssueCredentialRequest { Role = role, Ttl = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) }, vault.As());

        await WaitUntilAsync(async () => !await UserExistsAsync("postgres", issued.Username), TimeSpan.FromSeconds(20), "the user of a lease that expired mid-creation to be dropped");
        Assert.False(await systems.Postgres.CanLoginAsync(issued.Username, issued.Password));
        Assert.Empty((await leases.ListLeasesAsync(new ListLeasesRequest { Prefix = $"dynamic/{role}/" }, vault.As())).Leases);
    }

    [Fact]
    public async Task DefiningARole_NeedsReadOnTheTargetsAdminSecret_SinceItsStatementsRunAsThatAdmin()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var role = await RoleAsync(vault, "postgres");
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        var target = (await leases.GetDynamicRoleAsync(new GetDynamicRoleRequest { Name = role }, vault.As())).Target;
        await vault.Policies.PutAsync(new PutPolicyRequest
        {
            Policy = new Policy { Name = "roles", Rules = { new PolicyRule { Path = "rotation/target/+", Capabilities = { "read" } }, new PolicyRule { Path = "lease/role/*", Capabilities = { "create", "update" } } } },
        }, vault.As());
        var token = (await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "roles" } }, vault.As())).Token;

        var ex = await Assert.ThrowsAsync<RpcException>(async () => await leases.PutDynamicRoleAsync(new PutDynamicRoleRequest
        {
            Role = new DynamicRole { Name = role, Target = target, CreationStatements = { "ALTER ROLE {{name}} SUPERUSER" } },
        }, vault.As(token)));

        Assert.Equal(StatusCode.PermissionDenied, ex.StatusCode);
        Assert.Contains("kv/admin/", ex.Status.Detail, StringComparison.Ordinal);
        var unchanged = await leases.GetDynamicRoleAsync(new GetDynamicRoleRequest { Name = role }, vault.As());
        Assert.DoesNotContain(unchanged.CreationStatements, s => s.Contains("SUPERUSER", StringComparison.Ordinal));
    }

    private static CallOptions Keyed(TestVault vault, string key) =>
        new(new Metadata { { "authorization", $"Bearer {vault.RootToken}" }, { Vault.Server.Idempotency.IdempotentWrites.Header, key } });

    [Fact]
    public async Task AnIssue_SentAgainWithItsKey_GivesTheSameCredential_AndMakesNoSecondUser()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var role = await RoleAsync(vault, "postgres");
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        var key = Guid.NewGuid().ToString("N");
        var request = new IssueCredentialRequest { Role = role, Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(10)) };

        var first = await leases.IssueCredentialAsync(request, Keyed(vault, key));
        var again = await leases.IssueCredentialAsync(request, Keyed(vault, key));

        Assert.Equal(first, again);
        Assert.True(await systems.Get("postgres").CanLoginAsync(again.Username, again.Password), "the credential given again does not log in");
        Assert.Equal(first.Lease.Id, Assert.Single((await leases.ListLeasesAsync(new ListLeasesRequest { Prefix = $"dynamic/{role}/" }, vault.As())).Leases).Id);
        // Every user of this role (named v_<the role's first ten letters and digits>_<random>): one.
        var stem = new string([.. role.Where(char.IsAsciiLetterOrDigit).Take(10)]);
        Assert.Equal(1L, Convert.ToInt64(await systems.PostgresServer.ScalarAsync($"SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v_{stem}_%'"), System.Globalization.CultureInfo.InvariantCulture));
        // The answer kept for the repeat holds the password, sealed: never in the data file.
        vault.FlushStore();
        DataDirectoryScan.AssertNoneAppear(vault.DataDir, [first.Password]);
    }

    [Fact]
    public async Task ARenewal_SentAgainWithItsKey_MovesTheExpiryOnce()
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await TestVault.StartInitializedOnAsync(clock);
        var role = await RoleAsync(vault, "postgres");
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        var issued = await leases.IssueCredentialAsync(new IssueCredentialRequest { Role = role, Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(10)) }, vault.As());
        var key = Guid.NewGuid().ToString("N");
        var renew = new RenewLeaseRequest { LeaseId = issued.Lease.Id, Increment = Duration.FromTimeSpan(TimeSpan.FromMinutes(30)) };

        clock.Advance(TimeSpan.FromMinutes(1));
        var renewed = await leases.RenewLeaseAsync(renew, Keyed(vault, key));
        clock.Advance(TimeSpan.FromMinutes(1));
        var again = await leases.RenewLeaseAsync(renew, Keyed(vault, key));

        Assert.Equal(clock.GetUtcNow() - TimeSpan.FromMinutes(1) + TimeSpan.FromMinutes(30), renewed.ExpiresAt.ToDateTimeOffset(), TimeSpan.FromSeconds(1));
        Assert.Equal(renewed.ExpiresAt, again.ExpiresAt);
        Assert.Equal(renewed.ExpiresAt, (await leases.LookupLeaseAsync(new LookupLeaseRequest { LeaseId = issued.Lease.Id }, vault.As())).ExpiresAt);
    }

    private Task<string> RoleAsync(TestVault vault, string kind, TimeSpan? maxTtl = null, string[]? statements = null) =>
        RoleAsync(vault.Kv, vault.Targets(), new LeaseService.LeaseServiceClient(vault.Channel), vault.As(), kind, maxTtl, statements);

    /// <summary>A rotation target on the real server (admin: its superuser) and a dynamic role on it that may connect.</summary>
    private async Task<string> RoleAsync(KvService.KvServiceClient kv, TargetService.TargetServiceClient targets, LeaseService.LeaseServiceClient leases, CallOptions auth, string kind, TimeSpan? maxTtl = null, string[]? statements = null)
    {
        var system = systems.Get(kind);
        var admin = await RotationKit.PutAdminSecretAsync(kv, auth, system);
        var account = await system.CreateAccountAsync("Unused-Account-1");
        var target = RotationKit.UniqueName(kind);
        await targets.PutTargetAsync(new PutTargetRequest { Target = RotationKit.Describe(system, target, account, admin), CurrentPassword = "Unused-Account-1" }, auth);
        var role = RotationKit.UniqueName("dyn");
        var definition = new DynamicRole { Name = role, Target = target, MaxTtl = Duration.FromTimeSpan(maxTtl ?? TimeSpan.FromDays(1)) };
        definition.CreationStatements.AddRange(statements ?? [kind == "postgres" ? "GRANT CONNECT ON DATABASE postgres TO {{name}}" : "GRANT USAGE ON *.* TO {{name}}"]);
        await leases.PutDynamicRoleAsync(new PutDynamicRoleRequest { Role = definition }, auth);
        return role;
    }

    private async Task<bool> UserExistsAsync(string kind, string username) => kind switch
    {
        "postgres" => Convert.ToInt64(await systems.PostgresServer.ScalarAsync($"SELECT count(*) FROM pg_roles WHERE rolname = '{username}'"), System.Globalization.CultureInfo.InvariantCulture) > 0,
        _ => Convert.ToInt64(await systems.MariaDbServer.ScalarAsync($"SELECT COUNT(*) FROM mysql.user WHERE User = '{username}'"), System.Globalization.CultureInfo.InvariantCulture) > 0,
    };

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException($"timed out after {timeout.TotalSeconds:F0} s waiting for {what}");
            }
            await Task.Delay(200);
        }
    }
}
