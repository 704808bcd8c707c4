using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Rotation;

/// <summary>A password changed behind the vault's back shows as drifted at the next check.</summary>
public sealed class DriftTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    [Theory]
    [InlineData("postgres")]
    [InlineData("ldap")]
    public async Task PasswordChangedOnTheServer_ShowsAsDrifted_AndARotationClearsIt(string kind)
    {
        var system = systems.Get(kind);
        await using var vault = await TestVault.StartInitializedAsync("--Vault:Rotation:DriftCheckInterval=00:00:01");
        var targets = vault.Targets();
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await system.CreateAccountAsync(initial);
        var admin = await RotationKit.PutAdminSecretAsync(vault.Kv, vault.As(), system);
        var name = RotationKit.UniqueName("drift");
        await targets.PutTargetAsync(new PutTargetRequest { Target = RotationKit.Describe(system, name, account, admin), CurrentPassword = initial }, vault.As());
        var checkedOnce = await RotationKit.WaitForTargetAsync(targets, vault.As(), name, t => t.Status.LastCheckedAt is not null, TimeSpan.FromSeconds(20), "a first drift check");
        Assert.False(checkedOnce.Status.Drifted);

        using var events = await Telemetry.EventWatch.StartAsync(vault.Channel, vault.As(), "rotation.");
        // Someone changes the password directly on the server.
        var changed = $"Changed-{Guid.NewGuid():N}";
        await ChangeBehindTheVaultsBackAsync(kind, account, changed);

        var drifted = await RotationKit.WaitForTargetAsync(targets, vault.As(), name, t => t.Status.Drifted, TimeSpan.FromSeconds(20), "drift to be found");
        Assert.NotNull(drifted.Status.DriftedAt);
        var listed = (await targets.ListTargetsAsync(new ListTargetsRequest(), vault.As())).Targets.Single(t => t.Name == name);
        Assert.True(listed.Status.Drifted);
        Assert.Contains(await RotationKit.HistoryAsync(targets, vault.As(), name), e => e.Outcome == RotationOutcome.Drifted && e.Trigger == "drift-check");
        var driftEvent = await events.NextAsync(e => e.Attributes.GetValueOrDefault("target") == name);
        Assert.Equal(("rotation.drifted", kind, account, "drift-check"), (driftEvent.Type, driftEvent.Attributes["kind"], driftEvent.Attributes["account"], driftEvent.Attributes["trigger"]));
        Assert.DoesNotContain(changed, driftEvent.ToString(), StringComparison.Ordinal);

        // The admin credential does not need the lost password: a rotation puts the vault back in charge.
        var rotated = await targets.RotateTargetAsync(new RotateTargetRequest { Name = name }, vault.As());
        Assert.True(rotated.Event.Outcome == RotationOutcome.Succeeded, $"{rotated.Event.Step}: {rotated.Event.Reason}");
        Assert.False(rotated.Target.Status.Drifted);
        var credential = await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, vault.As());
        Assert.True(await system.CanLoginAsync(account, credential.Password));
    }

    private async Task ChangeBehindTheVaultsBackAsync(string kind, string account, string password)
    {
        switch (kind)
        {
            case "postgres":
                await systems.PostgresServer.ExecuteAsync($"ALTER ROLE \"{account}\" PASSWORD '{password}'");
                break;
            case "ldap":
                await systems.LdapServer.SendAsAdminAsync(new System.DirectoryServices.Protocols.ModifyRequest(
                    account, System.DirectoryServices.Protocols.DirectoryAttributeOperation.Replace, "userPassword", password));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind));
        }
        Assert.True(await systems.Get(kind).CanLoginAsync(account, password));
    }
}
