using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Vault.Client;
using Vault.Client.Leases;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Client;

/// <summary>VaultLease from the client library, against a real vault and a real PostgreSQL.</summary>
public sealed class VaultLeaseTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    private const string FastReaper = "--Vault:Leases:ReaperInterval=00:00:00.250";

    [Fact]
    public async Task CheckoutAsync_RenewsBeforeExpiry_WithoutTheCaller_AndDisposeRevokesOnTheServer()
    {
        // One clock for the vault and the lease, moved by the test: three TTLs pass in well under
        // a second, and no renewal can be late because the machine is busy.
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await TestVault.StartInitializedAsync(b => b.Services.AddSingleton<TimeProvider>(clock), FastReaper);
        var role = await ClientKit.DynamicRoleAsync(vault, systems.Postgres, maxTtl: TimeSpan.FromMinutes(5));
        using var client = await ClientKit.AppClientAsync(vault, ($"lease/creds/{role}", ["read"]));

        var lease = await client.CheckoutAsync(role, ttl: TimeSpan.FromSeconds(4), options: new VaultLeaseOptions { TimeProvider = clock });
        var issuedExpiry = lease.ExpiresAt;
        var renewals = 0;
        lease.Renewed += (_, _) => Interlocked.Increment(ref renewals);
        Assert.True(await systems.Postgres.CanLoginAsync(lease.Username, lease.Password));
        Assert.DoesNotContain(lease.Password, lease.Credential.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(lease.Password, lease.ToString(), StringComparison.Ordinal);

        // Three TTLs later, with a reaper that ends expired leases: only renewal keeps it alive.
        var until = clock.GetUtcNow() + TimeSpan.FromSeconds(12);
        await StepAsync(clock, lease, () => clock.GetUtcNow() >= until);

        Assert.True(renewals >= 3, $"only {renewals} renewals in 12 s of a 4 s lease");
        Assert.True(lease.ExpiresAt > issuedExpiry + TimeSpan.FromSeconds(5), $"expiry moved from {issuedExpiry:O} only to {lease.ExpiresAt:O}");
        var onServer = await vault.Leases().LookupLeaseAsync(new LookupLeaseRequest { LeaseId = lease.LeaseId }, vault.As());
        Assert.Equal(LeaseState.Active, onServer.State);
        Assert.True(onServer.ExpiresAt.ToDateTimeOffset() > clock.GetUtcNow(), "the server's expiry is in the past");
        Assert.False(lease.Ending.IsCancellationRequested);
        Assert.True(await systems.Postgres.CanLoginAsync(lease.Username, lease.Password), "the renewed credential is refused");

        await lease.DisposeAsync();

        var gone = await Assert.ThrowsAsync<RpcException>(async () => await vault.Leases().LookupLeaseAsync(new LookupLeaseRequest { LeaseId = lease.LeaseId }, vault.As()));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        Assert.False(await systems.Postgres.CanLoginAsync(lease.Username, lease.Password), "the credential still logs in after dispose");
        Assert.False(await ClientKit.PostgresUserExistsAsync(systems, lease.Username), "the user still exists after dispose");
        Assert.True(lease.Expired.IsCancellationRequested);
        await lease.DisposeAsync(); // twice is fine
    }

    /// <summary>
    /// Moves the clock the vault and <paramref name="lease"/> share a step at a time until
    /// <paramref name="done"/>, giving them real time to act between steps. It never moves past
    /// the lease's expiry while it can still be renewed: there it waits (in real time) for the
    /// renewal, which must come, so a busy machine slows the test rather than failing it.
    /// </summary>
    private static async Task StepAsync(FakeTimeProvider clock, VaultLease lease, Func<bool> done)
    {
        var step = TimeSpan.FromMilliseconds(250);
        for (var steps = 0; !done(); steps++)
        {
            Assert.True(steps < 2_000, "gave up after 2,000 steps");
            var renewable = lease.ExpiresAt < lease.MaxExpiresAt && !lease.Ending.IsCancellationRequested;
            if (renewable && clock.GetUtcNow() + step >= lease.ExpiresAt)
            {
                var expiresAt = lease.ExpiresAt;
                var waited = System.Diagnostics.Stopwatch.StartNew();
                while (lease.ExpiresAt == expiresAt && !lease.Ending.IsCancellationRequested)
                {
                    Assert.True(waited.Elapsed < TimeSpan.FromSeconds(30), $"the lease did not renew before its expiry at {expiresAt:O} (its clock at {clock.GetUtcNow():O}, renewal error: {lease.RenewalError?.Message})");
                    await Task.Delay(10);
                }
                continue;
            }
            clock.Advance(step);
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task Lease_RenewsAtTwoThirdsOfItsTimeLeft_OnTheClockItIsGiven_WithoutWaitingAnHour()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var role = await ClientKit.DynamicRoleAsync(vault, systems.Postgres, maxTtl: TimeSpan.FromHours(24));
        // A token the client does not renew itself (an AppRole login's would be renewed on the same
        // clock, against expiries the server gives on its own: see the note on clock skew).
        using var client = new VaultClient(new VaultClientOptions { Address = vault.Address, Token = vault.RootToken });
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var lease = await client.CheckoutAsync(role, ttl: TimeSpan.FromHours(1), options: new VaultLeaseOptions { TimeProvider = clock });
        var renewed = System.Threading.Channels.Channel.CreateUnbounded<DateTimeOffset>();
        lease.Renewed += (_, expiresAt) => renewed.Writer.TryWrite(expiresAt);

        var issued = clock.GetUtcNow();

        // Its clock moves a minute at a time (the lease looks at it at least once a minute): the
        // first renewal comes at two thirds of the hour on that clock, never before.
        var first = await AdvanceUntilRenewedAsync(clock, renewed.Reader);
        Assert.True(first.At - issued >= TimeSpan.FromMinutes(40), $"renewed {first.At - issued} after issue, before two thirds of its hour");
        var onServer = await vault.Leases().LookupLeaseAsync(new LookupLeaseRequest { LeaseId = lease.LeaseId }, vault.As());
        Assert.Equal(first.ExpiresAt, onServer.ExpiresAt.ToDateTimeOffset());

        // The next one is planned from that renewal, on the same clock.
        var second = await AdvanceUntilRenewedAsync(clock, renewed.Reader);
        Assert.True(second.At > first.At);
        Assert.Null(lease.RenewalError);
        Assert.False(lease.Ending.IsCancellationRequested);
    }

    /// <summary>Moves <paramref name="clock"/> a minute at a time, letting the lease run between steps, until it renews; when it did (on that clock) and to what.</summary>
    private static async Task<(DateTimeOffset At, DateTimeOffset ExpiresAt)> AdvanceUntilRenewedAsync(FakeTimeProvider clock, System.Threading.Channels.ChannelReader<DateTimeOffset> renewed)
    {
        for (var minute = 0; minute < 120; minute++)
        {
            if (renewed.TryRead(out var expiresAt))
            {
                return (clock.GetUtcNow(), expiresAt);
            }
            clock.Advance(TimeSpan.FromMinutes(1));
            // Real time for the lease to see the step (and, when due, to renew over the network).
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (waited.ElapsedMilliseconds < 50 && !renewed.TryPeek(out _))
            {
                await Task.Delay(5);
            }
        }
        throw new TimeoutException("the lease did not renew within two hours on its clock");
    }

    [Fact]
    public async Task Lease_RevokedBehindItsBack_ReportsTheFailedRenewal_AndDisposesQuietly()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var role = await ClientKit.DynamicRoleAsync(vault, systems.Postgres, maxTtl: TimeSpan.FromMinutes(5));
        using var client = await ClientKit.AppClientAsync(vault, ($"lease/creds/{role}", ["read"]));
        await using var lease = await client.CheckoutAsync(role, ttl: TimeSpan.FromSeconds(3));
        var failed = new TaskCompletionSource<VaultLeaseRenewalFailedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        lease.RenewalFailed += (_, e) => failed.TrySetResult(e);

        // An admin revokes it: the holder's next renewal is told the lease is gone.
        await vault.Leases().RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = lease.LeaseId }, vault.As());
        var reason = await failed.Task.WaitAsync(TimeSpan.FromSeconds(15));

        // To its holder, a lease that no longer exists answers PermissionDenied (the server does not
        // say whether an id exists to a token without lease policy).
        Assert.Contains(Assert.IsType<RpcException>(reason.Error).StatusCode, new[] { StatusCode.NotFound, StatusCode.PermissionDenied });
        Assert.Same(reason.Error, lease.RenewalError);
        Assert.True(lease.Ending.IsCancellationRequested);
        Assert.True(lease.Expired.IsCancellationRequested, "a lease the server no longer knows is expired at once");
        await lease.DisposeAsync(); // the lease is gone: no exception
    }

    [Fact]
    public async Task Lease_AtItsMaxTtl_StopsRenewing_SignalsEnding_ThenExpires()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await TestVault.StartInitializedAsync(b => b.Services.AddSingleton<TimeProvider>(clock), FastReaper);
        var role = await ClientKit.DynamicRoleAsync(vault, systems.Postgres, maxTtl: TimeSpan.FromSeconds(5));
        using var client = new VaultClient(new VaultClientOptions { Address = vault.Address, Token = vault.RootToken });
        await using var lease = await client.CheckoutAsync(role, ttl: TimeSpan.FromSeconds(2), options: new VaultLeaseOptions { TimeProvider = clock });

        await StepAsync(clock, lease, () => lease.Ending.IsCancellationRequested);

        Assert.Null(lease.RenewalError);
        Assert.Equal(lease.MaxExpiresAt, lease.ExpiresAt);
        Assert.False(lease.Expired.IsCancellationRequested, "expired before its max TTL");
        await StepAsync(clock, lease, () => lease.Expired.IsCancellationRequested);
        Assert.True(clock.GetUtcNow() >= lease.MaxExpiresAt, $"expired at {clock.GetUtcNow():O}, before its max TTL {lease.MaxExpiresAt:O}");
        Assert.Null(lease.RenewalError);
    }

    [Fact]
    public async Task CheckoutAccountAsync_LendsTheAccountExclusively_AndDisposeChecksItIn_SoTheHeldPasswordDies()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var system = systems.Postgres;
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await system.CreateAccountAsync(initial);
        var admin = await RotationKit.PutAdminSecretAsync(vault.Kv, vault.As(), system);
        var target = RotationKit.UniqueName("lent");
        await vault.Targets().PutTargetAsync(new PutTargetRequest { Target = RotationKit.Describe(system, target, account, admin), CurrentPassword = initial }, vault.As());
        var set = RotationKit.UniqueName("set");
        await vault.Leases().PutCheckoutSetAsync(new PutCheckoutSetRequest { Set = new CheckoutSet { Name = set, Targets = { target } } }, vault.As());
        using var client = await ClientKit.AppClientAsync(vault, ($"lease/set/{set}", ["checkout"]));

        var lease = await client.CheckoutAccountAsync(set, ttl: TimeSpan.FromMinutes(5));

        Assert.Equal(account, lease.Username);
        Assert.StartsWith($"checkout/{set}/", lease.LeaseId, StringComparison.Ordinal);
        Assert.True(await system.CanLoginAsync(account, lease.Password));
        var busy = await Assert.ThrowsAsync<RpcException>(() => client.CheckoutAccountAsync(set));
        Assert.Equal(StatusCode.ResourceExhausted, busy.StatusCode);

        await lease.DisposeAsync();

        Assert.False(await system.CanLoginAsync(account, lease.Password), "the checked-in password still logs in");
        await using var next = await client.CheckoutAccountAsync(set, wait: TimeSpan.FromSeconds(10));
        Assert.True(await system.CanLoginAsync(account, next.Password));
    }
}
