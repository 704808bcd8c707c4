using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
using MySqlConnector;
using Xunit.Abstractions;

namespace Vault.Tests.Testing;

[Collection("mariadb")]
public sealed class MariaDbServerTests(MariaDbServer server, ITestOutputHelper output)
{
    [Fact]
    public async Task CreatedUser_LogsInWithItsPassword_AndIsRefusedAnother()
    {
        var password = $"pw'\\{Guid.NewGuid():N}";
        var user = await server.CreateLoginUserAsync(password);

        Assert.True(await server.CanLoginAsync(user, password));
        Assert.False(await server.CanLoginAsync(user, password + "x"));
        Assert.False(await server.CanLoginAsync($"nobody_{Guid.NewGuid():N}", password));
    }

    [Fact]
    public async Task GeneralLog_HoldsStatementsWeRan_ButNotTheFixturesOwnPassword()
    {
        var password = Guid.NewGuid().ToString("N");
        var marker = $"marker_{Guid.NewGuid():N}";
        var user = await server.CreateLoginUserAsync(password, "logged");

        await server.ExecuteAsync($"SELECT '{marker}'");
        Assert.True(await server.CanLoginAsync(user, password));

        var log = server.GeneralLogText();
        Assert.Contains($"SELECT '{marker}'", log, StringComparison.Ordinal);
        Assert.Contains($"Connect\t{user}@127.0.0.1", log, StringComparison.Ordinal);
        Assert.DoesNotContain(password, log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SuperUser_MayGrantOverTcp()
    {
        var user = await server.CreateLoginUserAsync("pw");

        await server.ExecuteAsync($"GRANT SELECT ON mysql.* TO '{user}'@'%'");

        Assert.Equal(1L, await server.ScalarAsync($"SELECT COUNT(*) FROM mysql.db WHERE User = '{user}'"));
    }

    // Not the fixture but the server the rotator talks to: MariaDB (unlike MySQL) writes
    // IDENTIFIED BY passwords to the general log in plaintext, while a client-side
    // mysql_native_password hash works and leaves only the hash there.
    [Fact]
    public async Task MariaDb_LogsIdentifiedByInPlaintext_ButAcceptsAHashInstead()
    {
        var user = await server.CreateLoginUserAsync("first");
        var plain = $"plain{Guid.NewGuid():N}";
        var hashed = $"hashed{Guid.NewGuid():N}";

        await server.ExecuteAsync($"ALTER USER '{user}'@'%' IDENTIFIED BY '{plain}'");
        Assert.Contains(plain, server.GeneralLogText(), StringComparison.Ordinal);

        await server.ExecuteAsync($"ALTER USER '{user}'@'%' IDENTIFIED BY PASSWORD '{NativePasswordHash(hashed)}'");
        Assert.True(await server.CanLoginAsync(user, hashed));
        Assert.False(await server.CanLoginAsync(user, plain));
        Assert.DoesNotContain(hashed, server.GeneralLogText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task StopAndRestart_DownInBetween_ThenSamePortAndAccounts()
    {
        var clock = Stopwatch.StartNew();
        await using var db = await MariaDbServer.StartAsync();
        output.WriteLine($"MariaDB start-up (copy template + start + first login): {clock.ElapsedMilliseconds} ms");
        var user = await db.CreateLoginUserAsync("pw");
        var port = db.Port;

        clock.Restart();
        await db.StopAsync();
        output.WriteLine($"MariaDB clean stop: {clock.ElapsedMilliseconds} ms");
        Assert.False(db.IsRunning);
        await Assert.ThrowsAsync<MySqlException>(() => db.CanLoginAsync(user, "pw"));

        clock.Restart();
        await db.RestartAsync();
        output.WriteLine($"MariaDB restart: {clock.ElapsedMilliseconds} ms");
        Assert.Equal(port, db.Port);
        Assert.True(await db.CanLoginAsync(user, "pw"));
        Assert.True(await db.CanLoginAsync(db.SuperUser, db.SuperPassword));
    }

    [Fact]
    public async Task Kill_ThenRestart_KeepsEveryAcknowledgedCommit()
    {
        await using var db = await MariaDbServer.StartAsync();
        var user = await db.CreateLoginUserAsync("first");
        await db.ExecuteAsync($"ALTER USER '{user}'@'%' IDENTIFIED BY 'second'");
        await db.ExecuteAsync("CREATE DATABASE app");
        await db.ExecuteAsync("CREATE TABLE app.t (v INT) ENGINE=InnoDB");
        await db.ExecuteAsync("INSERT INTO app.t VALUES (42)");

        await db.KillAsync();
        Assert.False(db.IsRunning);
        await Assert.ThrowsAsync<MySqlException>(() => db.CanLoginAsync(user, "second"));

        await db.RestartAsync();
        Assert.True(await db.CanLoginAsync(user, "second"));
        Assert.Equal(42, await db.ScalarAsync("SELECT v FROM app.t"));
    }

    [Fact]
    public async Task Dispose_StopsTheServerAndDeletesItsDirectory()
    {
        var db = await MariaDbServer.StartAsync();
        var directory = db.Directory;
        var connectionString = db.SuperConnectionString;

        await db.DisposeAsync();

        Assert.False(Directory.Exists(directory));
        await using var connection = new MySqlConnection(connectionString);
        await Assert.ThrowsAsync<MySqlException>(() => connection.OpenAsync());
    }

    // mysql_native_password: '*' and the upper-case hex of SHA1(SHA1(password)).
    [SuppressMessage("Security", "CA5350", Justification = "SHA-1 is the mysql_native_password format, not our choice.")]
    private static string NativePasswordHash(string password) =>
        "*" + Convert.ToHexString(SHA1.HashData(SHA1.HashData(Encoding.UTF8.GetBytes(password))));
}
