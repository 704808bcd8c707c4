using Grpc.Core;
using MySqlConnector;
using Npgsql;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Rotation;

/// <summary>
/// A password change that waits on a lock another session holds, while the vault is killed: the
/// server keeps the dead client's statement and applies it when the lock is released. The
/// restarted vault must not decide between the pending and the current password while that
/// statement can still take effect, or it keeps a password the database no longer accepts.
/// (LDAP has no case here: a directory client cannot hold a lock across operations.)
/// </summary>
public sealed class InFlightStatementTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    // Short, so the test does not wait long; the vault waits this (plus a margin) before reconciling.
    private const string StatementTimeout = "--Vault:Rotation:StatementTimeout=00:00:04";

    [Fact]
    public async Task Postgres_SetWaitingOnALock_WhenTheVaultIsKilled_TheVaultsPasswordLogsInAfterTheLockIsReleased()
    {
        var pg = systems.PostgresServer;
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await systems.Postgres.CreateAccountAsync(initial);
        await using var holder = new NpgsqlConnection(pg.SuperConnectionString);
        await holder.OpenAsync();
        await using var hold = await holder.BeginTransactionAsync();
        await using (var lockRole = new NpgsqlCommand($"ALTER ROLE \"{account}\" CONNECTION LIMIT -1", holder))
        {
            await lockRole.ExecuteNonQueryAsync();
        }
        var waiting = $"SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER ROLE \"{account}\" PASSWORD%'";

        await RotateKillRestartAsync(systems.Postgres, account, initial,
            isWaiting: async () => Convert.ToInt64(await pg.ScalarAsync(waiting)) > 0,
            // The other session ends without committing (a commit would make the waiting ALTER ROLE
            // fail with "tuple concurrently updated"), so the waiting statement goes ahead.
            release: () => hold.RollbackAsync());
    }

    [Fact]
    public async Task MariaDb_SetWaitingOnALock_WhenTheVaultIsKilled_TheVaultsPasswordLogsInAfterTheLockIsReleased()
    {
        // A server of its own: the table lock below holds off every ALTER and CREATE USER on the
        // server, and (behind the waiting writer) every read of the grant tables, which would stall
        // the tests that run beside this one on the shared server.
        await using var maria = await MariaDbServer.StartAsync();
        var system = new MariaDbSystem(maria);
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await system.CreateAccountAsync(initial);
        await using var holder = new MySqlConnection(maria.SuperConnectionString);
        await holder.OpenAsync();
        // ALTER USER writes mysql.global_priv: a read lock on it from another session holds it off.
        await using (var lockTable = new MySqlCommand("LOCK TABLES mysql.global_priv READ", holder))
        {
            await lockTable.ExecuteNonQueryAsync();
        }
        var waiting = $"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for%' AND INFO LIKE 'ALTER USER%{account}%'";
        try
        {
            await RotateKillRestartAsync(system, account, initial,
                isWaiting: async () => Convert.ToInt64(await maria.ScalarAsync(waiting)) > 0,
                release: async () =>
                {
                    await using var unlock = new MySqlCommand("UNLOCK TABLES", holder);
                    await unlock.ExecuteNonQueryAsync();
                });
        }
        finally
        {
            await using var unlock = new MySqlCommand("UNLOCK TABLES", holder);
            await unlock.ExecuteNonQueryAsync();
        }
    }

    private static async Task RotateKillRestartAsync(ITargetSystem system, string account, string initial, Func<Task<bool>> isWaiting, Func<Task> release)
    {
        var name = RotationKit.UniqueName("inflight");
        var dataDir = Directory.CreateTempSubdirectory("vault-inflight-").FullName;
        await using var server = new VaultProcess(dataDir);
        await server.StartAsync(StatementTimeout);
        var init = await new SystemService.SystemServiceClient(server.Channel).InitAsync(new InitRequest { Passphrase = TestVault.Passphrase, Kdf = TestVault.FastKdf });
        var auth = new CallOptions(new Metadata { { "authorization", "Bearer " + init.RootToken } });
        var admin = await RotationKit.PutAdminSecretAsync(new KvService.KvServiceClient(server.Channel), auth, system);
        await new TargetService.TargetServiceClient(server.Channel).PutTargetAsync(
            new PutTargetRequest { Target = RotationKit.Describe(system, name, account, admin), CurrentPassword = initial }, auth);

        var rotation = new TargetService.TargetServiceClient(server.Channel).RotateTargetAsync(new RotateTargetRequest { Name = name }, auth).ResponseAsync;
        await WaitUntilAsync(isWaiting, TimeSpan.FromSeconds(30), "the vault's password change to wait on the lock");
        await server.KillAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => rotation);

        await server.StartAsync(StatementTimeout);
        await new SystemService.SystemServiceClient(server.Channel).UnsealAsync(new UnsealRequest { Passphrase = TestVault.Passphrase });
        var targets = new TargetService.TargetServiceClient(server.Channel);
        await RotationKit.WaitForTargetAsync(targets, auth, name, t => t.Status.State == TargetState.Ready && t.Status.PendingStep == "", TimeSpan.FromSeconds(60), "reconciliation");

        // The other session ends; whatever the dead vault's statement is going to do, it does now.
        await release();
        await WaitUntilAsync(async () => !await isWaiting(), TimeSpan.FromSeconds(30), "the dead vault's statement to end");
        await Task.Delay(500);

        var credential = await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, auth);
        Assert.True(await system.CanLoginAsync(account, credential.Password),
            "the password the vault holds does not log in: a statement of the killed vault took effect after reconciliation decided");
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException($"timed out after {timeout.TotalSeconds:F0} s waiting for {what}");
            }
            await Task.Delay(100);
        }
    }
}
