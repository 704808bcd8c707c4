using Npgsql;
using Vault.Protocol.V1;
using Vault.Testing;
using Vault.Tests.Cli;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Storage.Postgres;

/// <summary>
/// A vault whose records live in a real PostgreSQL database (<c>Vault:StorageKind=postgres</c>):
/// it initialises, serves, keeps everything across a restart, its audit verifies, the database
/// holds no secret, token or passphrase, and the data directory holds no data file. A database
/// beyond loopback without a verified certificate is refused at start-up.
/// </summary>
public sealed class PostgresVaultTests(TargetSystems systems) : IClassFixture<TargetSystems>, IAsyncLifetime
{
    private const string SecretValue = "kept-in-postgres-9e21";
    private readonly string _database = $"vault_node_{Guid.NewGuid():N}";
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("vault-pg-node-");
    private string _connectionFile = "";

    public async Task InitializeAsync()
    {
        var server = systems.PostgresServer;
        await server.ExecuteAsync($"CREATE DATABASE {_database}");
        _connectionFile = Path.Combine(_work.FullName, "connection");
        await File.WriteAllTextAsync(_connectionFile, server.ConnectionString(server.SuperUser, server.SuperPassword, _database));
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await systems.PostgresServer.ExecuteAsync($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)");
        _work.Delete(recursive: true);
    }

    [Fact]
    public async Task AVaultOnPostgres_ServesAndKeepsEverythingAcrossARestart_AndTheDatabaseHoldsNoSecret()
    {
        await using var vault = await TestVault.StartInitializedAsync("--Vault:StorageKind=postgres", $"--Vault:StorageConnectionFile={_connectionFile}");
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "app/db", Data = { ["password"] = SecretValue } }, vault.As());
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "app", Rules = { new PolicyRule { Path = "kv/app/*", Capabilities = { "read" } } } } }, vault.As());
        var token = (await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "app" } }, vault.As())).Token;

        await vault.RestartAsync();
        await vault.UnsealAsync();
        Assert.Equal(SecretValue, (await vault.Kv.GetAsync(new GetSecretRequest { Path = "app/db" }, vault.As(token))).Data["password"]);
        Assert.Contains("audit log intact", (await new VaultCtl(vault.Address, vault.RootToken).RunAsync("audit", "verify")).Ok(), StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(vault.DataDir, "vault.db")), "the records went to the data directory, not PostgreSQL");

        var server = systems.PostgresServer;
        await using var data = NpgsqlDataSource.Create(server.ConnectionString(server.SuperUser, server.SuperPassword, _database));
        await using var rows = data.CreateCommand("SELECT collection, document FROM vault_documents");
        await using var reader = await rows.ExecuteReaderAsync();
        var collections = new HashSet<string>();
        while (await reader.ReadAsync())
        {
            collections.Add(reader.GetString(0));
            var bytes = reader.GetFieldValue<byte[]>(1);
            foreach (var secret in new[] { SecretValue, token, vault.RootToken, TestVault.Passphrase })
            {
                Assert.True(bytes.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(secret)) < 0, "a secret is in PostgreSQL in the clear");
            }
        }
        Assert.Superset(new HashSet<string> { "system", "kv_meta", "kv_versions", "policies", "tokens" }, collections);
    }

    [Fact]
    public async Task ASecondNodeOnTheSameDatabase_IsRefusedAtStartUp_AndMigrationIntoItToo()
    {
        await using var vault = await TestVault.StartInitializedAsync("--Vault:StorageKind=postgres", $"--Vault:StorageConnectionFile={_connectionFile}");
        var second = await VaultProcess.RunToExitAsync(new Dictionary<string, string>(),
            "--data-dir", Path.Combine(_work.FullName, "second"), "--listen", "127.0.0.1:0", "--Vault:StorageKind=postgres", $"--Vault:StorageConnectionFile={_connectionFile}");
        Assert.NotEqual(0, second.ExitCode);
        Assert.Contains("another vault node is using this database", second.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", second.Stderr, StringComparison.Ordinal);

        var passphrase = Path.Combine(_work.FullName, "passphrase");
        await File.WriteAllTextAsync(passphrase, TestVault.Passphrase);
        (await new VaultCtl("http://127.0.0.1:1").RunAsync("operator", "migrate", "--from", "postgres", "--to", Path.Combine(_work.FullName, "copy"),
            "--connection-file", _connectionFile, "--passphrase-file", passphrase)).OneLineError(1, "a vault node is running on the database");
        // The node itself writes on.
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "still/writing", Data = { ["v"] = "1" } }, vault.As());
    }

    [Fact]
    public async Task ADatabaseBeyondLoopback_WithoutAVerifiedCertificate_IsRefusedAtStartUp()
    {
        var remote = Path.Combine(_work.FullName, "remote");
        await File.WriteAllTextAsync(remote, "Host=db.example.com;Database=vault;Username=vault;Password=not-shown-anywhere;SSL Mode=Require");
        var run = await VaultProcess.RunToExitAsync(new Dictionary<string, string>(),
            "--data-dir", Path.Combine(_work.FullName, "data"), "--listen", "127.0.0.1:0", "--Vault:StorageKind=postgres", $"--Vault:StorageConnectionFile={remote}");

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("must be reached with its certificate verified: set SSL Mode=VerifyFull", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("not-shown-anywhere", run.Stderr + run.Stdout, StringComparison.Ordinal);

        var unknown = await VaultProcess.RunToExitAsync(new Dictionary<string, string>(),
            "--data-dir", Path.Combine(_work.FullName, "data"), "--listen", "127.0.0.1:0", "--Vault:StorageKind=sqlite");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("storage-kind: must be litedb or postgres, not 'sqlite'", unknown.Stderr, StringComparison.Ordinal);
    }
}
