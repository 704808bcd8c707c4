using Grpc.Core;
using Microsoft.Extensions.Time.Testing;
using Vault.Client.Credentials;
using Vault.Client.Leases;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Client;

/// <summary>
/// When a <see cref="VaultCredentialProvider"/> replaces a lease that reaches its max TTL: planned
/// from the lease's max end at issue, not learnt from the renewal that hits the cap (which a busy
/// machine delays until the old user is about to be dropped).
/// </summary>
public sealed class VaultCredentialProviderTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    [Fact]
    public async Task Lease_ReplaceAt_IsOneTtlBeforeItsMaxEnd_OrTwoThirdsOfItsLifeWhenThatIsLater()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var role = await ClientKit.DynamicRoleAsync(vault, systems.Postgres, maxTtl: TimeSpan.FromHours(24));
        using var client = await ClientKit.AppClientAsync(vault, ($"lease/creds/{role}", ["read"]));

        await using var renewable = await client.CheckoutAsync(role, ttl: TimeSpan.FromMinutes(15));
        await using var barelyRenewable = await client.CheckoutAsync(role, ttl: TimeSpan.FromHours(20));

        Assert.Equal(TimeSpan.FromHours(24), renewable.MaxExpiresAt - renewable.IssuedAt);
        Assert.Equal(renewable.MaxExpiresAt - TimeSpan.FromMinutes(15), renewable.ReplaceAt);
        Assert.Equal(barelyRenewable.IssuedAt + TimeSpan.FromHours(16), barelyRenewable.ReplaceAt);
    }

    [Fact]
    public async Task Provider_SwitchesToANewLeaseAtThePlannedTime_WithoutWaitingForTheRenewalThatHitsTheCap_ThenRevokesTheOldOne()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        // 1 h leases, at most 80 min: the switch is planned at two thirds of the life (53 min 20 s),
        // while the lease's own renewal (at 40 min of real time) never runs during the test — as if a
        // busy machine had delayed it. The provider's clock is fake; the vault's and the lease's are real.
        var role = await ClientKit.DynamicRoleAsync(vault, systems.Postgres, maxTtl: TimeSpan.FromMinutes(80));
        using var client = await ClientKit.AppClientAsync(vault, ($"lease/creds/{role}", ["read"]));
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var options = new VaultCredentialProviderOptions { TimeProvider = clock, Overlap = TimeSpan.FromMinutes(1) };
        await using var provider = new VaultCredentialProvider(client, VaultCredentialSource.DynamicRole(role, ttl: TimeSpan.FromHours(1)), options);
        var first = await provider.GetAsync();
        var lease = provider.CurrentLease!;
        var switched = new TaskCompletionSource<VaultCredential>(TaskCreationOptions.RunContinuationsAsynchronously);
        provider.Changed += (_, credential) => switched.TrySetResult(credential);
        Assert.Equal(lease.IssuedAt + TimeSpan.FromSeconds(3200), lease.ReplaceAt);

        clock.Advance(lease.ReplaceAt - TimeSpan.FromMinutes(1) - clock.GetUtcNow());
        await Task.Delay(TimeSpan.FromMilliseconds(500)); // real time for a wrong plan to show itself
        Assert.False(switched.Task.IsCompleted, "switched a minute before the planned time");
        Assert.Same(lease, provider.CurrentLease);

        clock.Advance(TimeSpan.FromMinutes(2));
        var second = await switched.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.NotEqual(first.Username, second.Username);
        Assert.True(await systems.Postgres.CanLoginAsync(second.Username, second.Password), "the new user cannot log in");
        Assert.True(await systems.Postgres.CanLoginAsync(first.Username, first.Password), "the old user was dropped before the overlap ended");
        Assert.Equal(first.Password, provider.GetPassword(first.Username));

        clock.Advance(options.Overlap);
        await ClientKit.WaitUntilAsync(async () => await IsGoneAsync(vault, lease.LeaseId), TimeSpan.FromSeconds(15), "the replaced lease to be revoked after the overlap");
        await ClientKit.WaitUntilAsync(async () => !await ClientKit.PostgresUserExistsAsync(systems, first.Username), TimeSpan.FromSeconds(15), "the old user to be dropped");
    }

    private static async Task<bool> IsGoneAsync(TestVault vault, string leaseId)
    {
        try
        {
            return (await vault.Leases().LookupLeaseAsync(new LookupLeaseRequest { LeaseId = leaseId }, vault.As())).State == LeaseState.Revoked;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            return true;
        }
    }
}
