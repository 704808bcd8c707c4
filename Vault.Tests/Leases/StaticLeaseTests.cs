using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Time.Testing;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Leases;

/// <summary>
/// Static leases against a real PostgreSQL: the target's current (shared) password under a lease
/// that records its holder. Ending the lease deletes it and leaves the password alone.
/// </summary>
public sealed class StaticLeaseTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    [Fact]
    public async Task AStaticLease_GivesTheCurrentPasswordThatLogsIn_IsListedAndPersisted_AndRevokingItLeavesThePasswordWorking()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var (target, account) = await TargetAsync(vault);
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "reader", Rules = { new PolicyRule { Path = $"rotation/target/{target}/credential", Capabilities = { "read" } } } } }, vault.As());
        var app = await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "reader" } }, vault.As());
        var leases = Leases(vault);

        var issued = await leases.LeaseStaticCredentialAsync(new LeaseStaticCredentialRequest { Target = target, Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(10)) }, vault.As(app.Token));

        Assert.Equal(account, issued.Username);
        Assert.True(await systems.Postgres.CanLoginAsync(account, issued.Password), "the leased password does not log in");
        Assert.StartsWith($"static/{target}/", issued.Lease.Id, StringComparison.Ordinal);
        Assert.Equal(LeaseState.Active, issued.Lease.State);
        Assert.Equal(app.Info.Accessor, issued.Lease.TokenAccessor);
        var lifetime = issued.Lease.ExpiresAt.ToDateTimeOffset() - issued.Lease.IssuedAt.ToDateTimeOffset();
        Assert.Equal(TimeSpan.FromMinutes(10), lifetime);
        var current = await vault.Targets().GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = target }, vault.As());
        Assert.Equal(current.Password, issued.Password);

        await vault.RestartAsync();
        await vault.UnsealAsync();
        leases = Leases(vault);
        var listed = await leases.ListLeasesAsync(new ListLeasesRequest { Prefix = $"static/{target}/" }, vault.As());
        Assert.Equal([issued.Lease.Id], listed.Leases.Select(l => l.Id));
        // The holder looks up and renews its own lease without a lease/id policy.
        Assert.Equal(LeaseState.Active, (await leases.LookupLeaseAsync(new LookupLeaseRequest { LeaseId = issued.Lease.Id }, vault.As(app.Token))).State);
        var renewed = await leases.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = issued.Lease.Id, Increment = Duration.FromTimeSpan(TimeSpan.FromMinutes(30)) }, vault.As(app.Token));
        Assert.True(renewed.ExpiresAt.ToDateTimeOffset() > issued.Lease.ExpiresAt.ToDateTimeOffset());

        var ended = await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = issued.Lease.Id }, vault.As(app.Token));

        Assert.Equal(LeaseState.Revoked, ended.State);
        await Rpc.FailsWith(StatusCode.NotFound, () => leases.LookupLeaseAsync(new LookupLeaseRequest { LeaseId = issued.Lease.Id }, vault.As()));
        Assert.True(await systems.Postgres.CanLoginAsync(account, issued.Password), "ending a static lease must not change the shared password");
    }

    [Fact]
    public async Task AStaticLease_SentAgainWithItsKey_IsTheSameLease_WithThePasswordAsItIsNow()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var (target, account) = await TargetAsync(vault);
        var leases = Leases(vault);
        var keyed = new CallOptions(new Metadata { { "authorization", $"Bearer {vault.RootToken}" }, { Vault.Server.Idempotency.IdempotentWrites.Header, Guid.NewGuid().ToString("N") } });
        var request = new LeaseStaticCredentialRequest { Target = target, Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(10)) };

        var first = await leases.LeaseStaticCredentialAsync(request, keyed);
        await vault.Targets().RotateTargetAsync(new RotateTargetRequest { Name = target }, vault.As());
        var again = await leases.LeaseStaticCredentialAsync(request, keyed);

        Assert.Equal(first.Lease, again.Lease);
        Assert.Equal([first.Lease.Id], (await leases.ListLeasesAsync(new ListLeasesRequest { Prefix = $"static/{target}/" }, vault.As())).Leases.Select(l => l.Id));
        // The password rotated between the two: the repeat is given the live one, never the dead.
        Assert.NotEqual(first.Password, again.Password);
        Assert.True(await systems.Postgres.CanLoginAsync(account, again.Password), "the password given to the repeat does not log in");
    }

    [Fact]
    public async Task AnExpiredStaticLease_IsEndedByTheReaper()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await TestVault.StartInitializedOnAsync(clock, "--Vault:Leases:ReaperInterval=00:00:00.250");
        var (target, _) = await TargetAsync(vault);
        var leases = Leases(vault);
        var issued = await leases.LeaseStaticCredentialAsync(new LeaseStaticCredentialRequest { Target = target, Ttl = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) }, vault.As());
        var kept = await leases.LeaseStaticCredentialAsync(new LeaseStaticCredentialRequest { Target = target }, vault.As());

        clock.Advance(TimeSpan.FromSeconds(2));

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((await leases.ListLeasesAsync(new ListLeasesRequest { Prefix = $"static/{target}/" }, vault.As())).Leases.Any(l => l.Id == issued.Lease.Id))
        {
            Assert.True(DateTime.UtcNow < deadline, "the expired static lease was never ended");
            await Task.Delay(100);
        }
        Assert.Equal([kept.Lease.Id], (await leases.ListLeasesAsync(new ListLeasesRequest { Prefix = $"static/{target}/" }, vault.As())).Leases.Select(l => l.Id));
    }

    [Fact]
    public async Task APersonsLease_IsEndedByTheReaper_WhenTheirEntityIsDisabled()
    {
        await using var vault = await TestVault.StartInitializedAsync("--Vault:Leases:ReaperInterval=00:00:00.250");
        var (target, _) = await TargetAsync(vault);
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "reader", Rules = { new PolicyRule { Path = $"rotation/target/{target}/credential", Capabilities = { "read" } } } } }, vault.As());
        var users = new UserpassService.UserpassServiceClient(vault.Channel);
        await users.PutUserAsync(new PutUserRequest { User = new User { Name = "leaver", Policies = { "reader" } }, Password = "a long passphrase for the leaver" }, vault.As());
        var person = await users.LoginAsync(new UserpassLoginRequest { Username = "leaver", Password = "a long passphrase for the leaver" });
        var leases = Leases(vault);
        var issued = await leases.LeaseStaticCredentialAsync(new LeaseStaticCredentialRequest { Target = target, Ttl = Duration.FromTimeSpan(TimeSpan.FromHours(1)) }, vault.As(person.Token));

        await new IdentityService.IdentityServiceClient(vault.Channel).PutEntityAsync(new PutEntityRequest { Entity = new Entity { Name = "leaver", Disabled = true } }, vault.As());

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((await leases.ListLeasesAsync(new ListLeasesRequest { Prefix = $"static/{target}/" }, vault.As())).Leases.Any(l => l.Id == issued.Lease.Id))
        {
            Assert.True(DateTime.UtcNow < deadline, "the disabled person's lease was never ended");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task WithoutReadOnTheCredential_ALeaseIsDenied_AndBadInputNamesTheField()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var (target, _) = await TargetAsync(vault);
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "viewer", Rules = { new PolicyRule { Path = $"rotation/target/{target}", Capabilities = { "read" } } } } }, vault.As());
        var viewer = await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "viewer" } }, vault.As());
        var leases = Leases(vault);

        await Rpc.FailsWith(StatusCode.PermissionDenied, () => leases.LeaseStaticCredentialAsync(new LeaseStaticCredentialRequest { Target = target }, vault.As(viewer.Token)));
        var tooLong = await Rpc.FailsWith(StatusCode.InvalidArgument, () => leases.LeaseStaticCredentialAsync(new LeaseStaticCredentialRequest { Target = target, Ttl = Duration.FromTimeSpan(TimeSpan.FromHours(25)) }, vault.As()));
        Assert.Contains("ttl", tooLong.Status.Detail, StringComparison.Ordinal);
        var badName = await Rpc.FailsWith(StatusCode.InvalidArgument, () => leases.LeaseStaticCredentialAsync(new LeaseStaticCredentialRequest { Target = "no such/target" }, vault.As()));
        Assert.Contains("target", badName.Status.Detail, StringComparison.Ordinal);
        await Rpc.FailsWith(StatusCode.NotFound, () => leases.LeaseStaticCredentialAsync(new LeaseStaticCredentialRequest { Target = "absent" }, vault.As()));

        Assert.Empty((await leases.ListLeasesAsync(new ListLeasesRequest { Prefix = "static/" }, vault.As())).Leases);
    }

    [Fact]
    public async Task ALiveStaticLease_DoesNotHoldOffDeletingItsTarget()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var (target, _) = await TargetAsync(vault);
        await Leases(vault).LeaseStaticCredentialAsync(new LeaseStaticCredentialRequest { Target = target }, vault.As());

        await vault.Targets().DeleteTargetAsync(new DeleteTargetRequest { Name = target }, vault.As());

        await Rpc.FailsWith(StatusCode.NotFound, () => vault.Targets().GetTargetAsync(new GetTargetRequest { Name = target }, vault.As()));
        await Rpc.FailsWith(StatusCode.NotFound, () => Leases(vault).LeaseStaticCredentialAsync(new LeaseStaticCredentialRequest { Target = target }, vault.As()));
    }

    private static LeaseService.LeaseServiceClient Leases(TestVault vault) => new(vault.Channel);

    private async Task<(string Target, string Account)> TargetAsync(TestVault vault)
    {
        var system = systems.Postgres;
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await system.CreateAccountAsync(initial);
        var admin = await RotationKit.PutAdminSecretAsync(vault.Kv, vault.As(), system);
        var target = RotationKit.UniqueName("static");
        await vault.Targets().PutTargetAsync(new PutTargetRequest { Target = RotationKit.Describe(system, target, account, admin), CurrentPassword = initial }, vault.As());
        return (target, account);
    }
}
