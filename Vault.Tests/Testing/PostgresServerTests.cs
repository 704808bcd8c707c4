using System.Diagnostics;
using Npgsql;
using Xunit.Abstractions;

namespace Vault.Tests.Testing;

[Collection("postgres")]
public sealed class PostgresServerTests(PostgresServer server, ITestOutputHelper output)
{
    [Fact]
    public async Task CreatedRole_LogsInWithItsPassword_AndIsRefusedAnother()
    {
        var password = $"pw'\\{Guid.NewGuid():N}";
        var role = await server.CreateLoginRoleAsync(password);

        Assert.True(await server.CanLoginAsync(role, password));
        Assert.False(await server.CanLoginAsync(role, password + "x"));
        Assert.False(await server.CanLoginAsync($"nobody_{Guid.NewGuid():N}", password));
    }

    [Fact]
    public async Task CreatedRole_IsStoredAsScramVerifier_AndItsPasswordIsNotLogged()
    {
        var password = Guid.NewGuid().ToString("N");
        var role = await server.CreateLoginRoleAsync(password, "scram");

        var stored = (string?)await server.ScalarAsync($"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'");

        Assert.StartsWith("SCRAM-SHA-256$", stored, StringComparison.Ordinal);
        Assert.DoesNotContain(password, server.LogText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Log_HoldsEveryStatementAndLogin()
    {
        var marker = $"marker_{Guid.NewGuid():N}";
        var role = await server.CreateLoginRoleAsync("pw", "logged");

        await server.ExecuteAsync($"COMMENT ON ROLE {role} IS '{marker}'");
        Assert.True(await server.CanLoginAsync(role, "pw"));

        // Npgsql uses the extended protocol, so statements are logged as "execute <unnamed>: …".
        var log = server.LogText();
        Assert.Contains($"execute <unnamed>: COMMENT ON ROLE {role} IS '{marker}'", log, StringComparison.Ordinal);
        Assert.Contains($"connection authenticated: identity=\"{role}\" method=scram-sha-256", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectionString_OpensAConnectionAsTheGivenUser()
    {
        var role = await server.CreateLoginRoleAsync("pw");

        await using var connection = new NpgsqlConnection(server.ConnectionString(role, "pw"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT current_user", connection);

        Assert.Equal(role, await command.ExecuteScalarAsync());
        Assert.Equal(("127.0.0.1", "postgres", "postgres"), (server.Host, server.Database, server.SuperUser));
    }

    [Fact]
    public async Task StopAndRestart_DownInBetween_ThenSamePortAndAccounts()
    {
        var clock = Stopwatch.StartNew();
        await using var pg = await PostgresServer.StartAsync();
        output.WriteLine($"PostgreSQL start-up (initdb + start + first login): {clock.ElapsedMilliseconds} ms");
        var role = await pg.CreateLoginRoleAsync("pw");
        var port = pg.Port;

        await pg.StopAsync();
        Assert.False(pg.IsRunning);
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => pg.CanLoginAsync(role, "pw"));

        clock.Restart();
        await pg.RestartAsync();
        output.WriteLine($"PostgreSQL restart: {clock.ElapsedMilliseconds} ms");
        Assert.Equal(port, pg.Port);
        Assert.True(await pg.CanLoginAsync(role, "pw"));
    }

    [Fact]
    public async Task Kill_ThenRestart_KeepsEveryAcknowledgedCommit()
    {
        await using var pg = await PostgresServer.StartAsync();
        var role = await pg.CreateLoginRoleAsync("first");
        await pg.ExecuteAsync($"ALTER ROLE {role} PASSWORD 'second'");

        await pg.KillAsync();
        Assert.False(pg.IsRunning);
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => pg.CanLoginAsync(role, "second"));

        await pg.RestartAsync();
        Assert.True(await pg.CanLoginAsync(role, "second"));
    }

    [Fact]
    public async Task Dispose_StopsTheServerAndDeletesItsDirectory()
    {
        var pg = await PostgresServer.StartAsync();
        var directory = pg.Directory;
        var connectionString = pg.SuperConnectionString;

        await pg.DisposeAsync();

        Assert.False(Directory.Exists(directory));
        await using var connection = new NpgsqlConnection(connectionString);
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => connection.OpenAsync());
    }
}
