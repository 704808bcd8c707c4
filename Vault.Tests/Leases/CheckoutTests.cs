using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Time.Testing;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Leases;

/// <summary>Exclusive check-out of service accounts against a real PostgreSQL: one holder at a time, and a dead password after check-in.</summary>
public sealed class CheckoutTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    [Fact]
    public async Task SixtyFourConcurrentCheckouts_OfOneAccount_ExactlyOneSucceeds_AndAfterCheckInItsPasswordIsRefused()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var (set, account) = await SetOfOneAsync(vault);
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);

        var attempts = await Task.WhenAll(Enumerable.Range(0, 64).Select(_ => Task.Run(async () =>
        {
            try
            {
                return (Credential: await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = set }, vault.As()), Status: StatusCode.OK);
            }
            catch (RpcException ex)
            {
                return (Credential: (IssuedCredential?)null, Status: ex.StatusCode);
            }
        })));

        var holder = Assert.Single(attempts, a => a.Status == StatusCode.OK).Credential!;
        Assert.Equal(63, attempts.Count(a => a.Status == StatusCode.ResourceExhausted));
        Assert.Equal(account, holder.Username);
        Assert.True(await systems.Postgres.CanLoginAsync(account, holder.Password), "the holder's password does not log in");
        var lent = await leases.GetCheckoutSetAsync(new GetCheckoutSetRequest { Name = set }, vault.As());
        Assert.Equal(lent.Targets, lent.Lent);

        var checkedIn = await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = holder.Lease.Id }, vault.As());

        Assert.Equal(LeaseState.Revoked, checkedIn.State);
        Assert.False(await systems.Postgres.CanLoginAsync(account, holder.Password), "the first holder's password still logs in after check-in");
        var next = await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = set }, vault.As());
        Assert.NotEqual(holder.Password, next.Password);
        Assert.True(await systems.Postgres.CanLoginAsync(account, next.Password));
        await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = next.Lease.Id }, vault.As());
    }

    [Fact]
    public async Task Waiters_AreServedInArrivalOrder_AsTheAccountComesBack()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var (set, account) = await SetOfOneAsync(vault);
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        var first = await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = set }, vault.As());

        var waiters = new List<Task<IssuedCredential>>();
        for (var i = 0; i < 4; i++)
        {
            waiters.Add(leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = set, Wait = Duration.FromTimeSpan(TimeSpan.FromSeconds(60)) }, vault.As()).ResponseAsync);
            await Task.Delay(300); // arrival order
        }
        Assert.All(waiters, w => Assert.False(w.IsCompleted));

        var previous = first;
        for (var i = 0; i < waiters.Count; i++)
        {
            await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = previous.Lease.Id }, vault.As());
            var served = await waiters[i].WaitAsync(TimeSpan.FromSeconds(30));
            Assert.All(waiters.Skip(i + 1), w => Assert.False(w.IsCompleted, "a later waiter was served first"));
            Assert.False(await systems.Postgres.CanLoginAsync(account, previous.Password), "the previous holder's password still logs in");
            Assert.True(await systems.Postgres.CanLoginAsync(account, served.Password));
            previous = served;
        }
        await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = previous.Lease.Id }, vault.As());

        // A waiter whose wait runs out gets RESOURCE_EXHAUSTED.
        var holder = await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = set }, vault.As());
        var late = await Assert.ThrowsAsync<RpcException>(async () =>
            await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = set, Wait = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) }, vault.As()));
        Assert.Equal(StatusCode.ResourceExhausted, late.StatusCode);
        await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = holder.Lease.Id }, vault.As());
    }

    [Fact]
    public async Task ExpiredCheckout_IsCheckedInByTheReaper_AndTheHoldersPasswordDies()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await TestVault.StartInitializedOnAsync(clock, "--Vault:Leases:ReaperInterval=00:00:00.500");
        var (set, account) = await SetOfOneAsync(vault);
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        var holder = await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = set, Ttl = Duration.FromTimeSpan(TimeSpan.FromSeconds(2)) }, vault.As());
        Assert.True(await systems.Postgres.CanLoginAsync(account, holder.Password));

        clock.Advance(TimeSpan.FromSeconds(3));

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await leases.GetCheckoutSetAsync(new GetCheckoutSetRequest { Name = set }, vault.As())).Lent.Count > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the expired check-out was never checked in");
            await Task.Delay(200);
        }

        Assert.False(await systems.Postgres.CanLoginAsync(account, holder.Password));
        var history = await RotationKit.HistoryAsync(vault.Targets(), vault.As(), (await leases.GetCheckoutSetAsync(new GetCheckoutSetRequest { Name = set }, vault.As())).Targets.Single());
        Assert.Contains(history, e => e.Trigger == "check-in" && e.Outcome == RotationOutcome.Succeeded);
    }

    [Fact]
    public async Task CheckIn_ByACallerThatDoesNotHoldTheLease_IsRefused_AndChangesNothing()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var (set, account) = await SetOfOneAsync(vault);
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        var holder = await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = set }, vault.As());
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "borrower", Rules = { new PolicyRule { Path = $"lease/set/{set}", Capabilities = { "checkout" } } } } }, vault.As());
        var other = await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "borrower" } }, vault.As());

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = holder.Lease.Id }, vault.As(other.Token)));

        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        Assert.Contains(holder.Lease.Id, refused.Status.Detail, StringComparison.Ordinal);
        Assert.True(await systems.Postgres.CanLoginAsync(account, holder.Password), "a refused check-in changed the password");
        Assert.Equal(LeaseState.Active, (await leases.LookupLeaseAsync(new LookupLeaseRequest { LeaseId = holder.Lease.Id }, vault.As())).State);
        await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = holder.Lease.Id }, vault.As());
    }

    [Fact]
    public async Task ALentAccount_KeepsItsPasswordUntilCheckIn_WhateverElseIsAsked()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var (set, account) = await SetOfOneAsync(vault);
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        var targetName = (await leases.GetCheckoutSetAsync(new GetCheckoutSetRequest { Name = set }, vault.As())).Targets.Single();
        var targets = vault.Targets();
        var target = (await targets.GetTargetAsync(new GetTargetRequest { Name = targetName }, vault.As())).Clone();
        target.Status = null;
        var holder = await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = set }, vault.As());

        // A second set may not lend it; it may not be rotated, scheduled or deleted while lent.
        var second = await Assert.ThrowsAsync<RpcException>(async () =>
            await leases.PutCheckoutSetAsync(new PutCheckoutSetRequest { Set = new CheckoutSet { Name = RotationKit.UniqueName("set2"), Targets = { targetName } } }, vault.As()));
        Assert.Equal(StatusCode.InvalidArgument, second.StatusCode);
        Assert.Contains($"already lent by set '{set}'", second.Status.Detail, StringComparison.Ordinal);
        var rotate = await Assert.ThrowsAsync<RpcException>(async () => await targets.RotateTargetAsync(new RotateTargetRequest { Name = targetName }, vault.As()));
        Assert.Equal(StatusCode.FailedPrecondition, rotate.StatusCode);
        target.Schedule = new Protocol.V1.RotationSchedule { Interval = Duration.FromTimeSpan(TimeSpan.FromSeconds(2)) };
        var schedule = await Assert.ThrowsAsync<RpcException>(async () => await targets.PutTargetAsync(new PutTargetRequest { Target = target }, vault.As()));
        Assert.Equal(StatusCode.FailedPrecondition, schedule.StatusCode);
        var delete = await Assert.ThrowsAsync<RpcException>(async () => await targets.DeleteTargetAsync(new DeleteTargetRequest { Name = targetName, Force = true }, vault.As()));
        Assert.Equal(StatusCode.FailedPrecondition, delete.StatusCode);
        Assert.True(await systems.Postgres.CanLoginAsync(account, holder.Password), "the holder's password changed while lent");

        await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = holder.Lease.Id }, vault.As());
        // Checking in twice (a stale second attempt) neither rotates again nor lends the account twice.
        var again = await Assert.ThrowsAsync<RpcException>(async () => await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = holder.Lease.Id }, vault.As()));
        Assert.Equal(StatusCode.NotFound, again.StatusCode);
        var next = await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = set }, vault.As());
        var busy = await Assert.ThrowsAsync<RpcException>(async () => await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = set }, vault.As()));
        Assert.Equal(StatusCode.ResourceExhausted, busy.StatusCode);
        await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = next.Lease.Id }, vault.As());
    }

    [Fact]
    public async Task LendingAnAccount_NeedsReadOnItsCredential()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var (set, _) = await SetOfOneAsync(vault);
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        var targetName = (await leases.GetCheckoutSetAsync(new GetCheckoutSetRequest { Name = set }, vault.As())).Targets.Single();
        await vault.Policies.PutAsync(new PutPolicyRequest
        {
            Policy = new Policy
            {
                Name = "lender",
                Rules = { new PolicyRule { Path = "rotation/target/+", Capabilities = { "read" } }, new PolicyRule { Path = "lease/set/*", Capabilities = { "create", "update", "checkout" } } },
            },
        }, vault.As());
        var token = (await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "lender" } }, vault.As())).Token;

        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await leases.PutCheckoutSetAsync(new PutCheckoutSetRequest { Set = new CheckoutSet { Name = RotationKit.UniqueName("steal"), Targets = { targetName } } }, vault.As(token)));

        Assert.Equal(StatusCode.PermissionDenied, ex.StatusCode);
        Assert.Contains($"rotation/target/{targetName}/credential", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ACheckout_SentAgainWithItsKey_IsTheSameLoan_AndTheAccountIsNotLentTwice_AndItsCheckInToo()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var (set, account) = await SetOfOneAsync(vault);
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        // An application's token: it may check accounts out of the set, and end its own loans.
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "borrower", Rules = { new PolicyRule { Path = $"lease/set/{set}", Capabilities = { "checkout" } } } } }, vault.As());
        var app = (await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "borrower" } }, vault.As())).Token;
        CallOptions Keyed(string key) => new(new Metadata { { "authorization", $"Bearer {app}" }, { Vault.Server.Idempotency.IdempotentWrites.Header, key } });
        var checkoutKey = Guid.NewGuid().ToString("N");

        var first = await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = set }, Keyed(checkoutKey));
        // Without the key the set of one would answer RESOURCE_EXHAUSTED: its account is lent.
        var again = await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = set }, Keyed(checkoutKey));

        Assert.Equal(first, again);
        Assert.Equal(account, again.Username);
        Assert.True(await systems.Postgres.CanLoginAsync(account, again.Password));
        Assert.Equal(first.Lease.Id, Assert.Single((await leases.ListLeasesAsync(new ListLeasesRequest { Prefix = $"checkout/{set}/" }, vault.As())).Leases).Id);
        var other = await Assert.ThrowsAsync<RpcException>(async () => await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = set }, vault.As(app)));
        Assert.Equal(StatusCode.ResourceExhausted, other.StatusCode);

        // The holder checks it in under a key, twice: the second hears it ended, though the lease
        // record is gone (without the key: NOT_FOUND, or denied, since a holder may end only a
        // lease that exists).
        var checkInKey = Guid.NewGuid().ToString("N");
        var ended = await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = first.Lease.Id }, Keyed(checkInKey));
        var endedAgain = await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = first.Lease.Id }, Keyed(checkInKey));
        Assert.Equal(LeaseState.Revoked, ended.State);
        Assert.Equal(ended, endedAgain);
        await Rpc.FailsWith(StatusCode.NotFound, () => leases.LookupLeaseAsync(new LookupLeaseRequest { LeaseId = first.Lease.Id }, vault.As()));
        Assert.False(await systems.Postgres.CanLoginAsync(account, first.Password), "the holder's password still logs in after check-in");

        // The loan is over: a repeat of its check-out is refused rather than given the dead password.
        var late = await Assert.ThrowsAsync<RpcException>(async () => await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = set }, Keyed(checkoutKey)));
        Assert.Equal(StatusCode.FailedPrecondition, late.StatusCode);
        Assert.Contains(first.Lease.Id, late.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(first.Password, late.Status.Detail, StringComparison.Ordinal);
    }

    private async Task<(string Set, string Account)> SetOfOneAsync(TestVault vault)
    {
        var system = systems.Postgres;
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await system.CreateAccountAsync(initial);
        var admin = await RotationKit.PutAdminSecretAsync(vault.Kv, vault.As(), system);
        var target = RotationKit.UniqueName("lent");
        await vault.Targets().PutTargetAsync(new PutTargetRequest { Target = RotationKit.Describe(system, target, account, admin), CurrentPassword = initial }, vault.As());
        var set = RotationKit.UniqueName("set");
        await new LeaseService.LeaseServiceClient(vault.Channel).PutCheckoutSetAsync(new PutCheckoutSetRequest { Set = new CheckoutSet { Name = set, Targets = { target } } }, vault.As());
        return (set, account);
    }
}
