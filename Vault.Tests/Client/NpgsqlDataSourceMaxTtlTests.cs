using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Vault.Client;
using Vault.Client.Credentials;
using Vault.Client.Leases;
using Vault.Client.Npgsql;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Client;

/// <summary>
/// An application on <see cref="VaultNpgsqlDataSource"/> keeps querying when its lease, or the token
/// that holds it, reaches its max TTL: the data source switches to a new user and the old one is dropped.
/// </summary>
public sealed class NpgsqlDataSourceMaxTtlTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    [Fact]
    public async Task App_KeepsQuerying_WhenItsLeaseReachesItsMaxTtl_SwitchingToANewUser_AndTheOldUserIsDropped()
    {
        // The vault and the client share a clock the test moves: a full run on a loaded machine
        // once took longer than the 1 s overlap to make the next user (a TLS login and CREATE ROLE),
        // so the old user's VALID UNTIL passed first and two new connections were refused. The point
        // here is that the data source switches users before the old one ends, not how fast a busy
        // machine makes users. PostgreSQL's VALID UNTIL reads the real clock, which the shared one
        // runs ahead of, so only the vault's reaper ends a user here.
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await TestVault.StartInitializedOnAsync(clock, "--Vault:Leases:ReaperInterval=00:00:00.250");
        var role = await ClientKit.DynamicRoleAsync(vault, systems.Postgres, maxTtl: TimeSpan.FromSeconds(8));
        using var client = await ClientKit.AppClientAsync(vault, ($"lease/creds/{role}", ["read"]));
        var options = new VaultCredentialProviderOptions { Overlap = TimeSpan.FromSeconds(1), TimeProvider = clock, Lease = new VaultLeaseOptions { TimeProvider = clock } };
        await using var dataSource = await NpgsqlApp.Builder(systems).BuildVaultDataSourceAsync(client, VaultCredentialSource.DynamicRole(role, ttl: TimeSpan.FromSeconds(3)), options);

        await using var app = NpgsqlApp.QueryLoop.Start(dataSource);
        await StepAsync(clock, dataSource, options.Overlap, TimeSpan.FromSeconds(12), () => "", holderReady: null);
        var run = await app.StopAsync();

        run.AssertNoFailure();
        Assert.True(run.Users.Count >= 2, $"the app used only {string.Join(", ", run.Users)} in 12 s of leases with an 8 s max TTL");
        // The clock stops with the test: a switch made at the last step leaves the user before it
        // within its overlap, with a lease that ends only later. Move the clock past every lease the
        // app used (no lease is longer than 3 s), so that only the vault's reaper decides.
        await StepAsync(clock, dataSource, options.Overlap, TimeSpan.FromSeconds(4), () => "", holderReady: null);
        var current = dataSource.Credentials.Current!.Username;
        foreach (var retired in run.Users.Where(u => u != current))
        {
            try
            {
                await ClientKit.WaitUntilAsync(async () => !await ClientKit.PostgresUserExistsAsync(systems, retired), TimeSpan.FromSeconds(10), $"retired user {retired} to be dropped");
            }
            catch (Xunit.Sdk.XunitException ex)
            {
                throw new Xunit.Sdk.XunitException($"{ex.Message}; the clock reads {clock.GetUtcNow():O}; leases: {await LeasesAsync(vault)}");
            }
        }
    }

    /// <summary>Every lease on the vault, a line each, for a failure message.</summary>
    private static async Task<string> LeasesAsync(TestVault vault) =>
        string.Join("; ", (await vault.Leases().ListLeasesAsync(new ListLeasesRequest(), vault.As())).Leases
            .Select(l => $"{l.Username} {l.State} issued {l.IssuedAt} expires {l.ExpiresAt} max {l.MaxExpiresAt} {l.LastError}"));

    [Fact]
    public async Task App_OnAnAppRoleLogin_KeepsQuerying_WhenItsTokenReachesItsMaxTtl_AndLeasesMoveToTheNewToken()
    {
        // On a shared clock the test moves, as above: a full run once stalled the test process for
        // 11 s, longer than a 3 s lease, and the app's next connection used a user already dropped.
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await TestVault.StartInitializedOnAsync(clock, "--Vault:Leases:ReaperInterval=00:00:00.250");
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
        // The client's log (logins, renewals, leases taken and revoked) comes with a failure: a full
        // run once saw two queries refused as the old user was dropped, with nothing to say why.
        var log = new Security.CapturingLoggerProvider { Timestamps = true };
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(log).SetMinimumLevel(LogLevel.Debug));
        using var client = new VaultClient(new VaultClientOptions { Address = vault.Address, RoleId = roleId, SecretId = secretId, TimeProvider = clock }, loggerFactory);
        var options = new VaultCredentialProviderOptions { Overlap = TimeSpan.FromSeconds(1), TimeProvider = clock, Lease = new VaultLeaseOptions { TimeProvider = clock } };
        await using var dataSource = await NpgsqlApp.Builder(systems).BuildVaultDataSourceAsync(client, VaultCredentialSource.DynamicRole(role, ttl: TimeSpan.FromSeconds(3)), options);

        await using var app = NpgsqlApp.QueryLoop.Start(dataSource);
        // The lease's token must be renewed (or replaced) before the clock moves past it, too: a
        // full run once stepped over the token's end while its renewal was still on the wire, and
        // the lease died with the token.
        await StepAsync(clock, dataSource, options.Overlap, TimeSpan.FromSeconds(18), () => "client log:\n" + string.Join('\n', log.Lines.TakeLast(60)),
            holderReady: () => HolderHasTimeLeftAsync(vault, dataSource, clock));
        var run = await app.StopAsync();

        run.AssertNoFailure(() => "client log:\n" + string.Join('\n', log.Lines.TakeLast(60)));
        Assert.True(run.Users.Count >= 2, $"the app used only {string.Join(", ", run.Users)} across 18 s of 8 s tokens");
        var current = dataSource.Credentials.CurrentLease!;
        var onServer = await vault.Leases().LookupLeaseAsync(new LookupLeaseRequest { LeaseId = current.LeaseId }, vault.As());
        // The lease's token is alive (kept renewed by the lease), and the lease is not renewed past that token's end.
        var holder = await vault.Tokens.LookupAsync(new LookupTokenRequest { Accessor = onServer.TokenAccessor }, vault.As());
        Assert.True(holder.ExpiresAt.ToDateTimeOffset() > clock.GetUtcNow(), "the lease's token has expired");
        Assert.True(current.MaxExpiresAt <= holder.MaxExpiresAt.ToDateTimeOffset(), $"the lease may be renewed until {current.MaxExpiresAt:O}, past its token's end {holder.MaxExpiresAt.ToDateTimeOffset():O}");
    }

    /// <summary>
    /// Whether the token that holds the lease in use has more than 0.6 s left on the vault, or is at
    /// its max TTL (then the lease ends with it, and the lease's own margin decides).
    /// </summary>
    private static async Task<bool> HolderHasTimeLeftAsync(TestVault vault, VaultNpgsqlDataSource dataSource, FakeTimeProvider clock)
    {
        if (dataSource.Credentials.CurrentLease is not { } lease)
        {
            return false;
        }
        try
        {
            var onServer = await vault.Leases().LookupLeaseAsync(new LookupLeaseRequest { LeaseId = lease.LeaseId }, vault.As());
            if (onServer.TokenAccessor.Length == 0)
            {
                return true;
            }
            var holder = await vault.Tokens.LookupAsync(new LookupTokenRequest { Accessor = onServer.TokenAccessor }, vault.As());
            return holder.ExpiresAt is null
                || holder.ExpiresAt.ToDateTimeOffset() - clock.GetUtcNow() >= TimeSpan.FromMilliseconds(600)
                || holder.ExpiresAt.ToDateTimeOffset() >= holder.MaxExpiresAt.ToDateTimeOffset();
        }
        catch (global::Grpc.Core.RpcException ex) when (ex.StatusCode == global::Grpc.Core.StatusCode.NotFound)
        {
            // Switched or ended meanwhile: look again.
            return false;
        }
    }

    /// <summary>
    /// Moves the shared clock <paramref name="total"/> forward, half a second at a time. Before each
    /// step the renewal or the switch that is due must be done (the lease in use has more than 0.6 s
    /// left); after a switch, the old user's work gets the overlap in real time before the clock
    /// moves on to the old lease's end, where the reaper drops it.
    /// </summary>
    private static async Task StepAsync(FakeTimeProvider clock, VaultNpgsqlDataSource dataSource, TimeSpan overlap, TimeSpan total, Func<string> context, Func<Task<bool>>? holderReady)
    {
        var user = dataSource.Credentials.Current!.Username;
        for (var moved = TimeSpan.Zero; moved < total; moved += TimeSpan.FromMilliseconds(500))
        {
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (dataSource.Credentials.CurrentLease is not { } lease || lease.ExpiresAt - clock.GetUtcNow() < TimeSpan.FromMilliseconds(600)
                || (holderReady is not null && !await holderReady()))
            {
                Assert.True(waited.Elapsed < TimeSpan.FromSeconds(15),
                    $"no renewal or switch: the lease in use ends at {dataSource.Credentials.CurrentLease?.ExpiresAt:O}, the clock reads {clock.GetUtcNow():O}\n{context()}");
                await Task.Delay(10);
            }
            if (dataSource.Credentials.Current!.Username != user)
            {
                user = dataSource.Credentials.Current!.Username;
                await Task.Delay(overlap);
            }
            clock.Advance(TimeSpan.FromMilliseconds(500));
            await Task.Delay(20); // real time for the queries to go on, and the lease to see the step
        }
    }
}
