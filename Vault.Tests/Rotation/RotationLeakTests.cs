using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Rotation;

/// <summary>A rotated password's plaintext reaches neither the database server's log nor the vault's data files.</summary>
public sealed class RotationLeakTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    [Fact]
    public async Task Postgres_WithLogStatementAll_NeverLogsTheRotatedPassword()
    {
        var password = await RotateOnceAsync(systems.Postgres);
        var log = systems.PostgresServer.LogText();
        Assert.Contains("ALTER ROLE", log, StringComparison.Ordinal);
        Assert.Contains("SCRAM-SHA-256$", log, StringComparison.Ordinal);
        Assert.DoesNotContain(password, log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MariaDb_WithTheGeneralLogOn_NeverLogsTheRotatedPassword()
    {
        var password = await RotateOnceAsync(systems.MariaDb);
        var log = systems.MariaDbServer.GeneralLogText();
        Assert.Contains("ALTER USER", log, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(password, log, StringComparison.Ordinal);
    }

    private static async Task<string> RotateOnceAsync(ITargetSystem system)
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var targets = vault.Targets();
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await system.CreateAccountAsync(initial);
        var admin = await RotationKit.PutAdminSecretAsync(vault.Kv, vault.As(), system);
        var name = RotationKit.UniqueName("leak");
        await targets.PutTargetAsync(new PutTargetRequest { Target = RotationKit.Describe(system, name, account, admin), CurrentPassword = initial }, vault.As());
        var result = await targets.RotateTargetAsync(new RotateTargetRequest { Name = name }, vault.As());
        Assert.True(result.Event.Outcome == RotationOutcome.Succeeded, $"{result.Event.Step}: {result.Event.Reason}");
        var password = (await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, vault.As())).Password;
        Assert.True(await system.CanLoginAsync(account, password));

        // Nor in the vault's own files: data file, audit log.
        DataDirectoryScan.AssertNoneAppear(vault.DataDir, [password, initial, system.Admin.Password]);
        return password;
    }
}
