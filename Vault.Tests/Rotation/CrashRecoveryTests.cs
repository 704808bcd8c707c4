using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Rotation;

/// <summary>
/// The server process is killed (SIGKILL) right after each step of a rotation (create and finish
/// durable by then; set and test done on the system, their records not waited for), for
/// each kind of system; the restarted, unsealed server reconciles the target, and the password it
/// then holds logs in to the real server.
/// </summary>
/// <remarks>
/// One class per kind (the subclasses at the end), so the three kinds' kill-and-restart runs,
/// each a minute or more one after another, run side by side.
/// </remarks>
public abstract class CrashRecoveryTests(TargetSystems systems, string kind) : IClassFixture<TargetSystems>
{
    [Theory]
    [InlineData("create")]
    [InlineData("set")]
    [InlineData("test")]
    [InlineData("finish")]
    public async Task Rotation_KilledAfterStep_IsReconciledAtStartup_AndTheVaultsPasswordLogsIn(string step)
    {
        var system = systems.Get(kind);
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await system.CreateAccountAsync(initial);
        var name = RotationKit.UniqueName(kind);
        var dataDir = Directory.CreateTempSubdirectory("vault-crash-").FullName;
        await using var server = new VaultProcess(dataDir);
        // A short statement timeout: reconcile waits it out after the restart.
        await server.StartAsync($"--Vault:Rotation:HaltAfterStep={step}", "--Vault:Rotation:StatementTimeout=00:00:02");
        var init = await new SystemService.SystemServiceClient(server.Channel).InitAsync(new InitRequest { Passphrase = TestVault.Passphrase, Kdf = TestVault.FastKdf });
        var auth = new CallOptions(new Metadata { { "authorization", "Bearer " + init.RootToken } });
        var admin = await RotationKit.PutAdminSecretAsync(new KvService.KvServiceClient(server.Channel), auth, system);
        await new TargetService.TargetServiceClient(server.Channel).PutTargetAsync(
            new PutTargetRequest { Target = RotationKit.Describe(system, name, account, admin), CurrentPassword = initial }, auth);

        // The rotation stops for good after the step; the call never answers.
        var rotation = new TargetService.TargetServiceClient(server.Channel).RotateTargetAsync(new RotateTargetRequest { Name = name }, auth).ResponseAsync;
        await WaitForOutputAsync(server, $"Rotation of {name} halted after {step}");
        await server.KillAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => rotation);

        await server.StartAsync();
        await new SystemService.SystemServiceClient(server.Channel).UnsealAsync(new UnsealRequest { Passphrase = TestVault.Passphrase });
        var targets = new TargetService.TargetServiceClient(server.Channel);
        var settled = await RotationKit.WaitForTargetAsync(targets, auth, name, t => t.Status.State == TargetState.Ready, TimeSpan.FromSeconds(60), "reconciliation");

        var credential = await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, auth);
        Assert.True(await system.CanLoginAsync(account, credential.Password), $"after a crash at {step}, the password the vault holds does not log in");
        var history = await RotationKit.HistoryAsync(targets, auth, name);
        switch (step)
        {
            case "create":
                // Nothing reached the system: the pending password is discarded.
                Assert.Equal(initial, credential.Password);
                Assert.Equal(0UL, settled.Status.Version);
                Assert.Contains(history, e => e.Outcome == RotationOutcome.Discarded && e.Trigger == "startup");
                break;
            case "set" or "test":
                // The system has the new password: the rotation is finished at start-up.
                Assert.NotEqual(initial, credential.Password);
                Assert.Equal(1UL, settled.Status.Version);
                Assert.Contains(history, e => e.Outcome == RotationOutcome.Recovered && e.Trigger == "startup");
                Assert.False(await system.CanLoginAsync(account, initial), "the old password still logs in");
                break;
            default:
                Assert.NotEqual(initial, credential.Password);
                Assert.Equal(1UL, settled.Status.Version);
                Assert.Contains(history, e => e.Outcome == RotationOutcome.Succeeded && e.Trigger == "manual");
                Assert.False(await system.CanLoginAsync(account, initial), "the old password still logs in");
                break;
        }
    }

    private static async Task WaitForOutputAsync(VaultProcess server, string text)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!server.Output.Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException($"the server never logged '{text}'; output:\n{server.Output}");
            }
            await Task.Delay(50);
        }
    }
}

public sealed class PostgresCrashRecoveryTests(TargetSystems systems) : CrashRecoveryTests(systems, "postgres");

public sealed class MySqlCrashRecoveryTests(TargetSystems systems) : CrashRecoveryTests(systems, "mysql");

public sealed class LdapCrashRecoveryTests(TargetSystems systems) : CrashRecoveryTests(systems, "ldap");
