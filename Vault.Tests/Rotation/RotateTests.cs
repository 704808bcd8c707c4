using Vault.Protocol.V1;
using Vault.Tests.Cli;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Rotation;

/// <summary>`vaultctl target rotate` against each real system: the vault's password logs in, the old one no longer does.</summary>
public sealed class RotateTests(TargetSystems systems) : IClassFixture<TargetSystems>, IAsyncLifetime
{
    private TestVault _vault = null!;

    public async Task InitializeAsync() => _vault = await TestVault.StartInitializedAsync();

    public async Task DisposeAsync() => await _vault.DisposeAsync();

    [Theory]
    [InlineData("postgres")]
    [InlineData("mysql")]
    [InlineData("ldap")]
    public async Task Rotate_ChangesThePassword_TheNewOneLogsIn_AndTheOldOneIsRefused(string kind)
    {
        var system = systems.Get(kind);
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await system.CreateAccountAsync(initial);
        var admin = await RotationKit.PutAdminSecretAsync(_vault.Kv, _vault.As(), system);
        var name = RotationKit.UniqueName(kind);
        var targets = _vault.Targets();
        await targets.PutTargetAsync(new PutTargetRequest { Target = RotationKit.Describe(system, name, account, admin), CurrentPassword = initial }, _vault.As());
        Assert.Equal(initial, (await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, _vault.As())).Password);

        var rotated = (await new VaultCtl(_vault.Address, _vault.RootToken).RunAsync("target", "rotate", name)).Ok();

        Assert.Matches(@"(?m)^Outcome +succeeded$", rotated);
        var credential = await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, _vault.As());
        Assert.Equal(account, credential.Username);
        Assert.Equal(1UL, credential.Version);
        Assert.NotEqual(initial, credential.Password);
        Assert.True(await system.CanLoginAsync(account, credential.Password), "the password the vault holds does not log in");
        Assert.DoesNotContain(credential.Password, rotated, StringComparison.Ordinal);
        Assert.False(await system.CanLoginAsync(account, initial), "the previous password still logs in");
        var target = await targets.GetTargetAsync(new GetTargetRequest { Name = name }, _vault.As());
        Assert.Equal(TargetState.Ready, target.Status.State);
        Assert.NotNull(target.Status.LastRotatedAt);
        var history = await RotationKit.HistoryAsync(targets, _vault.As(), name);
        Assert.Contains(history, e => e.Outcome == RotationOutcome.Succeeded && e.Trigger == "manual" && e.Version == 1 && e.Account == account);
    }
}
