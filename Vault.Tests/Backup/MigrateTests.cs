using Npgsql;
using Vault.Protocol.V1;
using Vault.Server.Storage;
using Vault.Tests.Cli;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Backup;

/// <summary>
/// <c>vaultctl operator migrate</c> between a LiteDB data directory and a real PostgreSQL database
/// and back: every record arrives byte for byte (the audit anchor aside, whose chain is made to begin
/// after the source's trail), the vault started on the result reads the same secrets, policies,
/// targets and leases, and its audit verifies. PostgreSQL holds only ciphertext and metadata.
/// </summary>
public sealed class MigrateTests(TargetSystems systems) : IClassFixture<TargetSystems>, IAsyncLifetime
{
    private const string SecretValue = "migrated-secret-value-4c1d";
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("vault-migrate-test-");
    private readonly string _database = $"vault_migrate_{Guid.NewGuid():N}";
    private string _connectionFile = "";

    public async Task InitializeAsync()
    {
        var server = systems.PostgresServer;
        await server.ExecuteAsync($"CREATE DATABASE {_database}");
        _connectionFile = Path.Combine(_work.FullName, "connection");
        await File.WriteAllTextAsync(_connectionFile, server.ConnectionString(server.SuperUser, server.SuperPassword, _database) + "\n");
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await systems.PostgresServer.ExecuteAsync($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)");
        _work.Delete(recursive: true);
    }

    [Fact]
    public async Task LiteDbToPostgresAndBack_LeavesTheSameSecretsPoliciesTargetsAndLeases()
    {
        var back = Path.Combine(_work.FullName, "back");
        var passphraseFile = Path.Combine(_work.FullName, "passphrase");
        await File.WriteAllTextAsync(passphraseFile, TestVault.Passphrase + "\n");
        await using var vault = await TestVault.StartInitializedAsync();
        var (target, role, leaseId) = await PrepareAsync(vault);
        var before = await ReadAsync(vault, target, role, leaseId);
        var cli = new VaultCtl("http://127.0.0.1:1");
        StoreSnapshot? sourceRecords = null;

        await vault.RestartAsync(async () =>
        {
            var there = (await cli.RunAsync("operator", "migrate", "--from", vault.DataDir, "--to", "postgres", "--connection-file", _connectionFile, "--passphrase-file", passphraseFile)).Ok();
            Assert.StartsWith("migrated ", there, StringComparison.Ordinal);
            Assert.Contains("values decrypted", there, StringComparison.Ordinal);
            await AssertPostgresHoldsNoSecretAsync(vault.RootToken);
            // Into a database that holds a vault: refused.
            (await cli.RunAsync("operator", "migrate", "--from", vault.DataDir, "--to", "postgres", "--connection-file", _connectionFile, "--passphrase-file", passphraseFile))
                .OneLineError(1, "already holds a vault");
            (await cli.RunAsync("operator", "migrate", "--from", "postgres", "--to", back, "--connection-file", _connectionFile, "--passphrase-file", passphraseFile)).Ok();
            sourceRecords = SnapshotOf(vault.DataDir);
        });

        // Every record the same, byte for byte; only the audit anchor's start moved past the source's trail.
        var backRecords = SnapshotOf(back);
        Assert.Equal(sourceRecords!.Index, backRecords.Index);
        Assert.Equal(sourceRecords.Documents.Select(d => (d.Collection, d.Id)), backRecords.Documents.Select(d => (d.Collection, d.Id)));
        var differing = sourceRecords.Documents.Zip(backRecords.Documents).Where(p => !p.First.Bson.AsSpan().SequenceEqual(p.Second.Bson)).Select(p => p.First.Id).ToList();
        Assert.Equal(["audit-anchor"], differing);

        await using var migrated = await TestVault.OpenAsync(back, vault.RootToken);
        await migrated.UnsealAsync();
        Assert.Equal(before, await ReadAsync(migrated, target, role, leaseId));
        Assert.Contains("audit log intact", (await new VaultCtl(migrated.Address, vault.RootToken).RunAsync("audit", "verify")).Ok(), StringComparison.Ordinal);
        await migrated.Kv.PutAsync(new PutSecretRequest { Path = "after/migrate", Data = { ["v"] = "1" } }, migrated.As());
    }

    [Fact]
    public async Task MigrateRefuses_ARunningServersDirectory_ANonEmptyDestination_AndAWrongPassphrase()
    {
        var passphraseFile = Path.Combine(_work.FullName, "passphrase");
        await File.WriteAllTextAsync(passphraseFile, TestVault.Passphrase + "\n");
        var wrongFile = Path.Combine(_work.FullName, "wrong");
        await File.WriteAllTextAsync(wrongFile, "not the passphrase at all\n");
        var cli = new VaultCtl("http://127.0.0.1:1");
        await using var running = await TestVault.StartInitializedAsync();
        (await cli.RunAsync("operator", "migrate", "--from", running.DataDir, "--to", "postgres", "--connection-file", _connectionFile, "--passphrase-file", passphraseFile))
            .OneLineError(1, "is in use by a running server");
        await running.Kv.PutAsync(new PutSecretRequest { Path = "a", Data = { ["v"] = "1" } }, running.As());
        await running.RestartAsync(async () =>
        {
            (await cli.RunAsync("operator", "migrate", "--from", running.DataDir, "--to", "postgres", "--connection-file", _connectionFile, "--passphrase-file", wrongFile))
                .OneLineError(1, "do not open");
            (await cli.RunAsync("operator", "migrate", "--from", "postgres", "--to", running.DataDir, "--connection-file", _connectionFile, "--passphrase-file", passphraseFile))
                .OneLineError(1, "is not empty");
        });
        (await cli.RunAsync("operator", "migrate", "--from", "here", "--to", "there", "--connection-file", _connectionFile, "--passphrase-file", passphraseFile))
            .OneLineError(1, "one side must be postgres");
        await using var check = NpgsqlDataSource.Create(File.ReadAllText(_connectionFile).Trim());
        Assert.True(await Vault.Server.Storage.Postgres.PostgresDocuments.IsEmptyAsync(check, default));
    }

    private async Task AssertPostgresHoldsNoSecretAsync(string rootToken)
    {
        await using var data = NpgsqlDataSource.Create(File.ReadAllText(_connectionFile).Trim());
        await using var rows = data.CreateCommand("SELECT document FROM vault_documents");
        await using var reader = await rows.ExecuteReaderAsync();
        var count = 0;
        while (await reader.ReadAsync())
        {
            var bytes = reader.GetFieldValue<byte[]>(0);
            foreach (var secret in new[] { SecretValue, rootToken, TestVault.Passphrase })
            {
                Assert.True(bytes.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(secret)) < 0, "a secret is in PostgreSQL in the clear");
            }
            count++;
        }
        Assert.True(count > 10, $"{count} documents in PostgreSQL");
    }

    /// <summary>A vault with versions of a secret, a policy, a token, a PostgreSQL target, a dynamic role and a lease.</summary>
    private async Task<(string Target, string Role, string LeaseId)> PrepareAsync(TestVault vault)
    {
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "app/db", Data = { ["password"] = "first" } }, vault.As());
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "app/db", Data = { ["password"] = SecretValue } }, vault.As());
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "app", Rules = { new PolicyRule { Path = "kv/app/*", Capabilities = { "read" } } } } }, vault.As());
        await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "app" } }, vault.As());
        var system = systems.Postgres;
        var admin = await RotationKit.PutAdminSecretAsync(vault.Kv, vault.As(), system);
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await system.CreateAccountAsync(initial);
        var target = RotationKit.UniqueName("mig");
        await vault.Targets().PutTargetAsync(new PutTargetRequest { Target = RotationKit.Describe(system, target, account, admin), CurrentPassword = initial }, vault.As());
        // A new target's first drift check is due at once: let it finish here, or it runs (and
        // changes the target) in whichever vault is unsealed next, after "before" was read.
        await RotationKit.WaitForTargetAsync(vault.Targets(), vault.As(), target, t => t.Status.LastCheckedAt is not null, TimeSpan.FromSeconds(60), "its first drift check");
        var role = RotationKit.UniqueName("dyn");
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        await leases.PutDynamicRoleAsync(new PutDynamicRoleRequest
        {
            Role = new DynamicRole { Name = role, Target = target, CreationStatements = { "GRANT CONNECT ON DATABASE postgres TO {{name}}" } },
        }, vault.As());
        var issued = await leases.IssueCredentialAsync(new IssueCredentialRequest { Role = role }, vault.As());
        return (target, role, issued.Lease.Id);
    }

    /// <summary>What a user sees of the vault's secrets, policy, target, role and lease.</summary>
    private static async Task<string> ReadAsync(TestVault vault, string target, string role, string leaseId)
    {
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        var seen = new object[]
        {
            (await vault.Kv.GetAsync(new GetSecretRequest { Path = "app/db" }, vault.As())).Data["password"],
            (await vault.Kv.GetAsync(new GetSecretRequest { Path = "app/db", Version = 1 }, vault.As())).Data["password"],
            await vault.Policies.GetAsync(new GetPolicyRequest { Name = "app" }, vault.As()),
            await vault.Targets().GetTargetAsync(new GetTargetRequest { Name = target }, vault.As()),
            (await vault.Targets().GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = target }, vault.As())).Password,
            await leases.GetDynamicRoleAsync(new GetDynamicRoleRequest { Name = role }, vault.As()),
            await leases.LookupLeaseAsync(new LookupLeaseRequest { LeaseId = leaseId }, vault.As()),
        };
        return string.Join("\n", seen.Select(s => s.ToString()));
    }

    private static StoreSnapshot SnapshotOf(string dataDir)
    {
        using var store = new LiteDbStore(dataDir, Microsoft.Extensions.Logging.Abstractions.NullLogger<LiteDbStore>.Instance, documentTypes: null, Collections.All, cacheBytes: 0);
        return store.Snapshot();
    }
}
