using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Rotation;

/// <summary>The vault rotates the admin credential its other targets use, and they keep working.</summary>
public sealed class AdminCredentialRotationTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    [Fact]
    public async Task AdminTarget_RotatesItself_PublishesTheVerifiedPassword_AndDependentTargetsStillRotate()
    {
        var pg = systems.PostgresServer;
        await using var vault = await TestVault.StartInitializedAsync();
        var targets = vault.Targets();
        var adminName = $"vadmin_{Guid.NewGuid():N}"[..20];
        var adminPassword = $"Admin-{Guid.NewGuid():N}";
        await pg.ExecuteAsync($"CREATE ROLE \"{adminName}\" WITH LOGIN CREATEROLE PASSWORD '{adminPassword}'");
        var adminSecret = $"admin/{Guid.NewGuid():N}";
        await vault.Kv.PutAsync(new PutSecretRequest { Path = adminSecret, Data = { ["username"] = adminName, ["password"] = adminPassword, ["note"] = "kept" } }, vault.As());

        var adminTarget = RotationKit.Describe(systems.Postgres, RotationKit.UniqueName("admin"), adminName, adminSecret);
        adminTarget.ManagesAdminSecret = true;
        await targets.PutTargetAsync(new PutTargetRequest { Target = adminTarget }, vault.As());
        var appInitial = $"App-{Guid.NewGuid():N}";
        var app = await systems.Postgres.CreateAccountAsync(appInitial);
        var appTarget = RotationKit.Describe(systems.Postgres, RotationKit.UniqueName("app"), app, adminSecret);
        await targets.PutTargetAsync(new PutTargetRequest { Target = appTarget, CurrentPassword = appInitial }, vault.As());

        var rotated = await targets.RotateTargetAsync(new RotateTargetRequest { Name = adminTarget.Name }, vault.As());

        Assert.True(rotated.Event.Outcome == RotationOutcome.Succeeded, $"{rotated.Event.Step}: {rotated.Event.Reason}");
        var secret = await vault.Kv.GetAsync(new GetSecretRequest { Path = adminSecret }, vault.As());
        var published = secret.Data["password"];
        Assert.NotEqual(adminPassword, published);
        Assert.Equal("kept", secret.Data["note"]);
        Assert.Equal(published, (await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = adminTarget.Name }, vault.As())).Password);
        Assert.True(await pg.CanLoginAsync(adminName, published));
        Assert.False(await pg.CanLoginAsync(adminName, adminPassword));

        // The dependent target authenticates with the new admin password.
        var appRotated = await targets.RotateTargetAsync(new RotateTargetRequest { Name = appTarget.Name }, vault.As());
        Assert.True(appRotated.Event.Outcome == RotationOutcome.Succeeded, $"{appRotated.Event.Step}: {appRotated.Event.Reason}");
        var appCredential = await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = appTarget.Name }, vault.As());
        Assert.True(await pg.CanLoginAsync(app, appCredential.Password));
    }
}
