using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Time.Testing;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Usage;

/// <summary>
/// The report's rotation side against a real PostgreSQL, on a clock the test moves: a target whose
/// rotation failed, a lease renewed to its maximum, a check-out held longer than the threshold.
/// </summary>
public sealed class TargetReportTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    [Fact]
    public async Task FailingTargets_LeasesRenewedToTheirMaximum_AndLongCheckouts_AreListed()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await TestVault.StartInitializedOnAsync(clock);
        var system = systems.Postgres;
        var targets = vault.Targets();
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        var reports = new ReportService.ReportServiceClient(vault.Channel);
        var admin = await RotationKit.PutAdminSecretAsync(vault.Kv, vault.As(), system);

        // A target whose admin credential is wrong: its rotation fails.
        var broken = RotationKit.UniqueName("broken");
        var brokenAdmin = $"admin/broken-{Guid.NewGuid():N}";
        await vault.Kv.PutAsync(new PutSecretRequest { Path = brokenAdmin, Data = { ["username"] = system.Admin.Username, ["password"] = "not the admin password" } }, vault.As());
        // (Its account's password is the one the vault holds: a drift check finds nothing.)
        var brokenInitial = "Initial-" + Guid.NewGuid().ToString("N");
        await targets.PutTargetAsync(new PutTargetRequest
        {
            Target = RotationKit.Describe(system, broken, await system.CreateAccountAsync(brokenInitial), brokenAdmin),
            CurrentPassword = brokenInitial,
            SkipVerification = true,
        }, vault.As());
        Assert.Equal(RotationOutcome.Failed, (await targets.RotateTargetAsync(new RotateTargetRequest { Name = broken }, vault.As())).Event.Outcome);

        // Two check-out sets of one account: one held for a day, one renewed to its two-hour maximum.
        async Task<string> SetAsync(TimeSpan defaultTtl, TimeSpan maxTtl)
        {
            var initial = "Initial-" + Guid.NewGuid().ToString("N");
            var target = RotationKit.UniqueName("lent");
            await targets.PutTargetAsync(new PutTargetRequest { Target = RotationKit.Describe(system, target, await system.CreateAccountAsync(initial), admin), CurrentPassword = initial }, vault.As());
            var set = RotationKit.UniqueName("set");
            await leases.PutCheckoutSetAsync(new PutCheckoutSetRequest
            {
                Set = new CheckoutSet { Name = set, Targets = { target }, DefaultTtl = Duration.FromTimeSpan(defaultTtl), MaxTtl = Duration.FromTimeSpan(maxTtl) },
            }, vault.As());
            return set;
        }
        var held = await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = await SetAsync(TimeSpan.FromDays(1), TimeSpan.FromDays(2)) }, vault.As());
        var renewed = await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = await SetAsync(TimeSpan.FromHours(1), TimeSpan.FromHours(2)) }, vault.As());
        await leases.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = renewed.Lease.Id, Increment = Duration.FromTimeSpan(TimeSpan.FromHours(5)) }, vault.As());

        var now = await reports.CredentialsAsync(new CredentialReportRequest(), vault.As());
        Assert.Equal(
            [$"lease {renewed.Lease.Id} renewed_to_max", $"target {broken} failing"],
            now.Items.Select(i => $"{i.Kind} {i.Id} {i.Reason}"));
        Assert.Contains("1 failures", now.Items.Single(i => i.Kind == "target").Detail, StringComparison.Ordinal);

        // Nine hours on: the renewed lease has ended; the day-long check-out is over the 8-hour threshold.
        clock.Advance(TimeSpan.FromHours(9));
        var later = await reports.CredentialsAsync(new CredentialReportRequest(), vault.As());
        var checkout = Assert.Single(later.Items, i => i.Kind == "checkout");
        Assert.Equal((held.Lease.Id, "checked_out_long", false), (checkout.Id, checkout.Reason, checkout.Prunable));
        Assert.Contains(held.Username, checkout.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(later.Items, i => i.Id == renewed.Lease.Id);
        // A longer threshold lists it no more.
        var lenient = await reports.CredentialsAsync(new CredentialReportRequest { CheckedOutFor = Duration.FromTimeSpan(TimeSpan.FromHours(10)) }, vault.As());
        Assert.DoesNotContain(lenient.Items, i => i.Kind == "checkout");
        await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = held.Lease.Id }, vault.As());
    }
}
