using MySqlConnector;
using Vault.Client.Credentials;
using Vault.Client.MySqlConnector;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Client;

/// <summary>An application on <see cref="VaultMySqlDataSource"/> against a real MariaDB.</summary>
public sealed class MySqlDataSourceTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    [Fact]
    public async Task App_KeepsQuerying_AcrossLeaseRenewalsAndASwitchToANewDynamicUser_WithoutAFailedQuery()
    {
        await using var vault = await TestVault.StartInitializedAsync("--Vault:Leases:ReaperInterval=00:00:00.250");
        var role = await ClientKit.DynamicRoleAsync(vault, systems.MariaDb, maxTtl: TimeSpan.FromSeconds(6));
        using var client = await ClientKit.AppClientAsync(vault, ($"lease/creds/{role}", ["read"]));
        var builder = new MySqlDataSourceBuilder(new MySqlConnectionStringBuilder
        {
            Server = systems.MariaDbServer.Host,
            Port = (uint)systems.MariaDbServer.Port,
            Pooling = false,
            // As the fixtures' and NpgsqlApp's: each connection is a TCP and TLS handshake (the test
            // servers offer TLS) and a login; a full run on the 2-core machine once took over 5 s
            // for one, which failed a query here. No test measures connect time.
            ConnectionTimeout = 15,
        }.ConnectionString);
        var options = new VaultCredentialProviderOptions { Overlap = TimeSpan.FromSeconds(1) };
        await using var dataSource = await builder.BuildVaultDataSourceAsync(client, VaultCredentialSource.DynamicRole(role, ttl: TimeSpan.FromSeconds(2)), options);

        var failures = new List<string>();
        var users = new HashSet<string>(StringComparer.Ordinal);
        var queries = 0;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < until)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync();
                await using var command = new MySqlCommand("SELECT CURRENT_USER()", connection);
                var user = (string)(await command.ExecuteScalarAsync())!;
                users.Add(user[..user.IndexOf('@', StringComparison.Ordinal)]);
                queries++;
            }
            catch (Exception ex) when (ex is MySqlException or InvalidOperationException)
            {
                failures.Add($"{DateTime.UtcNow:HH:mm:ss.fff} {ex.Message}");
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {queries + failures.Count} queries failed: {string.Join("; ", failures.Take(5))}");
        Assert.True(queries > 50, $"only {queries} queries ran");
        Assert.True(users.Count >= 2, $"the app used only {string.Join(", ", users)} in 10 s of leases with a 6 s max TTL");
        var current = dataSource.Credentials.Current!.Username;
        Assert.Contains(current, users);
        foreach (var retired in users.Where(u => u != current))
        {
            await ClientKit.WaitUntilAsync(async () => !await UserExistsAsync(retired), TimeSpan.FromSeconds(10), $"retired user {retired} to be dropped");
        }
    }

    private async Task<bool> UserExistsAsync(string username) =>
        Convert.ToInt64(await systems.MariaDbServer.ScalarAsync($"SELECT COUNT(*) FROM mysql.user WHERE User = '{username}'"), System.Globalization.CultureInfo.InvariantCulture) > 0;
}
