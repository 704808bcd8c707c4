using Microsoft.Extensions.Time.Testing;
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
/// <remarks>Two classes (this one and <see cref="NpgsqlDataSourceMaxTtlTests"/>), so their real waits run side by side.</remarks>
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
        await using var dataSource = await NpgsqlApp.Builder(systems).BuildVaultDataSourceAsync(client, VaultCredentialSource.RotationTarget(name));

        await using var app = NpgsqlApp.QueryLoop.Start(dataSource);
        for (var i = 0; i < 10; i++)
        {
            var result = await vault.Targets().RotateTargetAsync(new RotateTargetRequest { Name = name }, vault.As());
            if (result.Event.Outcome != RotationOutcome.Succeeded)
            {
                // A full run once saw the verifying login time out after 10 s: what the server was
                // doing then (sessions and their waits, its log) comes with the failure.
                var sessions = await systems.PostgresServer.ScalarAsync(
                    "SELECT string_agg(format('%s %s %s/%s %s', usename, state, wait_event_type, wait_event, left(query, 60)), E'\\n') FROM pg_catalog.pg_stat_activity");
                Assert.Fail($"rotation {i + 1}: {result.Event.Step}: {result.Event.Reason}\nPostgreSQL sessions:\n{sessions}\nPostgreSQL log:\n{Vault.Testing.Servers.ServerHost.Tail(systems.PostgresServer.LogText())}");
            }
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
        // The vault and the client share a clock the test moves: a full run on a loaded machine once
        // saw a renewal land after the 2 s lease had ended on the real clock, and the provider (rightly)
        // switched to a new user. The point here is that renewals keep the user alive, not how fast
        // a busy machine renews.
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await TestVault.StartInitializedOnAsync(clock, "--Vault:Leases:ReaperInterval=00:00:00.250");
        var role = await ClientKit.DynamicRoleAsync(vault, systems.Postgres, maxTtl: TimeSpan.FromMinutes(10));
        using var client = await ClientKit.AppClientAsync(vault, ($"lease/creds/{role}", ["read"]));
        var options = new VaultCredentialProviderOptions { TimeProvider = clock, Lease = new VaultLeaseOptions { TimeProvider = clock } };
        await using var dataSource = await NpgsqlApp.Builder(systems).BuildVaultDataSourceAsync(client, VaultCredentialSource.DynamicRole(role, ttl: TimeSpan.FromSeconds(2)), options);
        var lease = dataSource.Credentials.CurrentLease!;
        var issuedExpiry = lease.ExpiresAt;

        await using var app = NpgsqlApp.QueryLoop.Start(dataSource);
        // Four TTLs on the shared clock, half a second at a time: the reaper (on the same clock) drops
        // an unrenewed user at its expiry, so before each step the renewal that is due must be done.
        for (var step = 0; step < 16; step++)
        {
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (lease.ExpiresAt - clock.GetUtcNow() < TimeSpan.FromMilliseconds(600))
            {
                Assert.True(waited.Elapsed < TimeSpan.FromSeconds(15), $"the lease did not renew: it ends at {lease.ExpiresAt:O}, the clock reads {clock.GetUtcNow():O}; renewal error: {lease.RenewalError?.Message}");
                await Task.Delay(10);
            }
            clock.Advance(TimeSpan.FromMilliseconds(500));
            await Task.Delay(20); // real time for the queries to go on, and the lease to see the step
        }
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
}
