using Npgsql;
using Vault.Client;
using Vault.Client.Credentials;
using Vault.Client.Leases;
using Vault.Client.Npgsql;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Client;

/// <summary>
/// An application on <see cref="VaultNpgsqlDataSource"/> keeps querying a real PostgreSQL while the
/// vault rotates, renews and replaces its credential. Pooling is off, so every query opens a new
/// physical connection and logs in with the credential the data source holds at that moment.
/// </summary>
public sealed class NpgsqlDataSourceTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    [Fact]
    public async Task App_KeepsQuerying_WhileItsAlternatingUsersCredentialRotatesTenTimes_WithoutAFailedQuery()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var initial = $"Initial-{Guid.NewGuid():N}";
        var first = await systems.Postgres.CreateAccountAsync(initial);
        var second = await systems.Postgres.CreateAccountAsync($"Other-{Guid.NewGuid():N}");
        var admin = await RotationKit.PutAdminSecretAsync(vault.Kv, vault.As(), systems.Postgres);
        var name = RotationKit.UniqueName("alt");
        var target = RotationKit.Describe(systems.Postgres, name, first, admin);
        target.SecondAccount = second;
        target.Strategy = RotationStrategy.AlternatingUsers;
        await vault.Targets().PutTargetAsync(new PutTargetRequest { Target = target, CurrentPassword = initial }, vault.As());
        using var client = await ClientKit.AppClientAsync(vault, ($"rotation/target/{name}/credential", ["read"]));
        await using var dataSource = await Builder().BuildVaultDataSourceAsync(client, VaultCredentialSource.RotationTarget(name));

        await using var app = QueryLoop.Start(dataSource);
        for (var i = 0; i < 10; i++)
        {
            var result = await vault.Targets().RotateTargetAsync(new RotateTargetRequest { Name = name }, vault.As());
            Assert.True(result.Event.Outcome == RotationOutcome.Succeeded, $"rotation {i + 1}: {result.Event.Step}: {result.Event.Reason}");
            // Rotations come hours apart in production; here a moment apart, enough for the app to notice each.
            await Task.Delay(TimeSpan.FromMilliseconds(400));
        }
        var lastRotation = DateTimeOffset.UtcNow;
        await app.WaitForASuccessAfterAsync(lastRotation);
        var run = await app.StopAsync();

        run.AssertNoFailure();
        Assert.Equal(new HashSet<string> { first, second }, run.Users);
        Assert.Equal(10UL, (await vault.Targets().GetTargetAsync(new GetTargetRequest { Name = name }, vault.As())).Status.Version);
    }

    [Fact]
    public async Task App_KeepsQuerying_WhileItsDynamicLeaseIsRenewed_WithoutAFailedQuery()
    {
        await using var vault = await TestVault.StartInitializedAsync("--Vault:Leases:ReaperInterval=00:00:00.250");
        var role = await ClientKit.DynamicRoleAsync(vault, systems.Postgres, maxTtl: TimeSpan.FromMinutes(10));
        using var client = await ClientKit.AppClientAsync(vault, ($"lease/creds/{role}", ["read"]));
        await using var dataSource = await Builder().BuildVaultDataSourceAsync(client, VaultCredentialSource.DynamicRole(role, ttl: TimeSpan.FromSeconds(2)));
        var lease = dataSource.Credentials.CurrentLease!;
        var issuedExpiry = lease.ExpiresAt;

        await using var app = QueryLoop.Start(dataSource);
        await Task.Delay(TimeSpan.FromSeconds(8)); // four TTLs: the reaper would have dropped an unrenewed user three times over
        // Not a count of queries (a busy machine runs fewer): that the user still logs in well after
        // the lease's first expiry, which only the renewals allow.
        await app.WaitForASuccessAfterAsync(issuedExpiry + TimeSpan.FromSeconds(4));
        var run = await app.StopAsync();

        run.AssertNoFailure();
        Assert.Equal(lease.Username, Assert.Single(run.Users));
        Assert.Same(lease, dataSource.Credentials.CurrentLease);
        Assert.True(lease.ExpiresAt > issuedExpiry + TimeSpan.FromSeconds(4), $"expiry moved from {issuedExpiry:O} only to {lease.ExpiresAt:O}");
        var onServer = await vault.Leases().LookupLeaseAsync(new LookupLeaseRequest { LeaseId = lease.LeaseId }, vault.As());
        Assert.Equal(LeaseState.Active, onServer.State);

        await dataSource.DisposeAsync();
        Assert.False(await ClientKit.PostgresUserExistsAsync(systems, lease.Username), "disposing the data source left its user behind");
    }

    [Fact]
    public async Task App_KeepsQuerying_WhenItsLeaseReachesItsMaxTtl_SwitchingToANewUser_AndTheOldUserIsDropped()
    {
        await using var vault = await TestVault.StartInitializedAsync("--Vault:Leases:ReaperInterval=00:00:00.250");
        // A 3 s TTL: renewal comes with a second to spare, which a busy 2-core CI box needs
        // (with 2 s, a renewal delayed by two thirds of a second let the lease lapse mid-test).
        var role = await ClientKit.DynamicRoleAsync(vault, systems.Postgres, maxTtl: TimeSpan.FromSeconds(8));
        using var client = await ClientKit.AppClientAsync(vault, ($"lease/creds/{role}", ["read"]));
        var options = new VaultCredentialProviderOptions { Overlap = TimeSpan.FromSeconds(1) };
        await using var dataSource = await Builder().BuildVaultDataSourceAsync(client, VaultCredentialSource.DynamicRole(role, ttl: TimeSpan.FromSeconds(3)), options);

        await using var app = QueryLoop.Start(dataSource);
        await Task.Delay(TimeSpan.FromSeconds(12));
        var run = await app.StopAsync();

        run.AssertNoFailure();
        Assert.True(run.Users.Count >= 2, $"the app used only {string.Join(", ", run.Users)} in 12 s of leases with an 8 s max TTL");
        var current = dataSource.Credentials.Current!.Username;
        foreach (var retired in run.Users.Where(u => u != current))
        {
            await ClientKit.WaitUntilAsync(async () => !await ClientKit.PostgresUserExistsAsync(systems, retired), TimeSpan.FromSeconds(10), $"retired user {retired} to be dropped");
        }
    }

    [Fact]
    public async Task App_OnAnAppRoleLogin_KeepsQuerying_WhenItsTokenReachesItsMaxTtl_AndLeasesMoveToTheNewToken()
    {
        await using var vault = await TestVault.StartInitializedAsync("--Vault:Leases:ReaperInterval=00:00:00.250");
        var role = await ClientKit.DynamicRoleAsync(vault, systems.Postgres, maxTtl: TimeSpan.FromHours(1));
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "app", Rules = { new PolicyRule { Path = $"lease/creds/{role}", Capabilities = { "read" } } } } }, vault.As());
        var appRoles = new AppRoleService.AppRoleServiceClient(vault.Channel);
        // Tokens of 4 s, at most 8 s: a lease taken with one dies with it, whatever the role's max TTL.
        // (With 3 s / 6 s and 2 s leases, a busy 2-core CI box once let a switch land on a lease's end.)
        await appRoles.PutRoleAsync(new PutRoleRequest
        {
            Role = new Role { Name = "app", Policies = { "app" }, TokenTtl = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(4)), TokenMaxTtl = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(8)) },
        }, vault.As());
        var roleId = (await appRoles.GetRoleIdAsync(new GetRoleIdRequest { Name = "app" }, vault.As())).RoleId;
        var secretId = (await appRoles.CreateSecretIdAsync(new CreateSecretIdRequest { Name = "app" }, vault.As())).SecretId;
        using var client = new VaultClient(new VaultClientOptions { Address = vault.Address, RoleId = roleId, SecretId = secretId });
        var options = new VaultCredentialProviderOptions { Overlap = TimeSpan.FromSeconds(1) };
        await using var dataSource = await Builder().BuildVaultDataSourceAsync(client, VaultCredentialSource.DynamicRole(role, ttl: TimeSpan.FromSeconds(3)), options);

        await using var app = QueryLoop.Start(dataSource);
        await Task.Delay(TimeSpan.FromSeconds(18));
        var run = await app.StopAsync();

        run.AssertNoFailure();
        Assert.True(run.Users.Count >= 2, $"the app used only {string.Join(", ", run.Users)} across 18 s of 8 s tokens");
        var current = dataSource.Credentials.CurrentLease!;
        var onServer = await vault.Leases().LookupLeaseAsync(new LookupLeaseRequest { LeaseId = current.LeaseId }, vault.As());
        // The lease's token is alive (kept renewed by the lease), and the lease is not renewed past that token's end.
        var holder = await vault.Tokens.LookupAsync(new LookupTokenRequest { Accessor = onServer.TokenAccessor }, vault.As());
        Assert.True(holder.ExpiresAt.ToDateTimeOffset() > DateTimeOffset.UtcNow, "the lease's token has expired");
        Assert.True(current.MaxExpiresAt <= holder.MaxExpiresAt.ToDateTimeOffset(), $"the lease may be renewed until {current.MaxExpiresAt:O}, past its token's end {holder.MaxExpiresAt.ToDateTimeOffset():O}");
    }

    private NpgsqlDataSourceBuilder Builder() => new(new NpgsqlConnectionStringBuilder
    {
        Host = systems.PostgresServer.Host,
        Port = systems.PostgresServer.Port,
        Database = systems.PostgresServer.Database,
        Pooling = false,
        // Every query is a fresh login (a forked backend and SCRAM); on a busy 2-core CI box one
        // took over 5 s. A refused password fails at once whatever this is, so the test still
        // sees every credential failure.
        Timeout = 15,
    }.ConnectionString);

    /// <summary>An application's request loop: one query per iteration, each on a new physical connection.</summary>
    private sealed class QueryLoop : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly List<string> _failures = [];
        private readonly HashSet<string> _users = new(StringComparer.Ordinal);
        private Task _loop = Task.CompletedTask;
        private int _queries;
        private long _lastSuccessTicks;

        public static QueryLoop Start(VaultNpgsqlDataSource dataSource)
        {
            var loop = new QueryLoop();
            loop._loop = Task.Run(() => loop.RunAsync(dataSource));
            return loop;
        }

        public async Task<Run> StopAsync()
        {
            await _stop.CancelAsync();
            await _loop;
            return new Run(_queries, _users, _failures);
        }

        /// <summary>Waits (at most 30 s) for a query that started after <paramref name="moment"/> to succeed.</summary>
        public async Task WaitForASuccessAfterAsync(DateTimeOffset moment)
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (Interlocked.Read(ref _lastSuccessTicks) <= moment.UtcTicks)
            {
                Assert.True(DateTime.UtcNow < deadline, $"no query succeeded after {moment:O} ({_failures.Count} failed)");
                await Task.Delay(50);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _loop;
            _stop.Dispose();
        }

        private async Task RunAsync(VaultNpgsqlDataSource dataSource)
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    var started = DateTimeOffset.UtcNow;
                    await using var command = dataSource.CreateCommand("SELECT current_user");
                    var user = (string)(await command.ExecuteScalarAsync())!;
                    _users.Add(user);
                    _queries++;
                    Interlocked.Exchange(ref _lastSuccessTicks, started.UtcTicks);
                }
                catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
                {
                    _failures.Add($"{DateTime.UtcNow:HH:mm:ss.fff} {ex.GetType().Name}: {ex.Message}");
                }
            }
        }
    }

    private sealed record Run(int Queries, HashSet<string> Users, List<string> Failures)
    {
        public void AssertNoFailure() =>
            Assert.True(Failures.Count == 0, $"{Failures.Count} of {Queries + Failures.Count} queries failed: {string.Join("; ", Failures.Take(5))}");
    }
}
