using MySqlConnector;
using Vault.Rotators;
using Vault.Rotators.MySql;
using static Vault.Tests.Rotators.RotatorTestKit;

namespace Vault.Tests.Rotators;

/// <summary>The MySQL rotator against the shared MariaDB 10.11 server.</summary>
[Collection("mariadb")]
public sealed class MySqlRotatorTests(MariaDbServer server)
{
    private readonly MySqlRotator _rotator = new();

    private TargetConnection Target(params (string Key, string Value)[] options) => RotatorTestKit.Target(server.Host, server.Port, "", options);

    private Credential Admin => new(server.SuperUser, server.SuperPassword);

    [Fact]
    public async Task SetPassword_NewPasswordLogsIn_AndTheOldIsRefused()
    {
        var old = NewPassword();
        var user = await server.CreateLoginUserAsync(old, "myrot");
        var fresh = NewPassword();

        await _rotator.SetPasswordAsync(Target(), Admin, user, fresh, CancellationToken.None);

        Assert.True(await server.CanLoginAsync(user, fresh));
        Assert.False(await server.CanLoginAsync(user, old));
        Assert.Equal(LoginOutcome.Accepted, (await _rotator.VerifyLoginAsync(Target(), new Credential(user, fresh), CancellationToken.None)).Outcome);
        var refused = await _rotator.VerifyLoginAsync(Target(), new Credential(user, old), CancellationToken.None);
        Assert.Equal(LoginOutcome.Refused, refused.Outcome);
        Assert.Contains("1045", refused.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SetPassword_SendsTheNativeHash_SoTheGeneralLogNeverHoldsThePlaintext()
    {
        var user = await server.CreateLoginUserAsync(NewPassword(), "mylog");
        var fresh = NewPassword();

        await _rotator.SetPasswordAsync(Target(), Admin, $"{user}@%", fresh, CancellationToken.None);

        Assert.True(await server.CanLoginAsync(user, fresh));
        var log = server.GeneralLogText();
        Assert.Contains($"ALTER USER '{user}'@'%' IDENTIFIED BY PASSWORD '{NativePasswordHash.Compute(fresh)}'", log, StringComparison.Ordinal);
        AssertNoSecret(log, fresh);
    }

    [Fact]
    public async Task SetPassword_QuotesUserNamesWithQuotesAndBackslashes_UnderTheDefaultSqlMode()
    {
        var user = $"o'b\\x\"{Guid.NewGuid():N}"[..20];
        var literal = new MySqlQuoting(noBackslashEscapes: false).Literal(user);
        await server.ExecuteAsync($"CREATE USER {literal}@'%' IDENTIFIED BY 'initial-pw-1'");
        var fresh = NewPassword();

        await _rotator.SetPasswordAsync(Target(), Admin, user, fresh, CancellationToken.None);

        Assert.True(await server.CanLoginAsync(user, fresh));
        Assert.False(await server.CanLoginAsync(user, "initial-pw-1"));
    }

    [Fact]
    public async Task SetPassword_ForAMissingAccount_IsAccountNotFound()
    {
        var fresh = NewPassword();
        await FailsWith(RotatorFailure.AccountNotFound,
            () => _rotator.SetPasswordAsync(Target(), Admin, $"missing_{Guid.NewGuid():N}"[..24], fresh, CancellationToken.None), fresh, NativePasswordHash.Compute(fresh));
        // Same user name, other host.
        var user = await server.CreateLoginUserAsync(NewPassword(), "myhost");
        await FailsWith(RotatorFailure.AccountNotFound,
            () => _rotator.SetPasswordAsync(Target(), Admin, $"{user}@10.9.8.7", fresh, CancellationToken.None), fresh, NativePasswordHash.Compute(fresh));
    }

    [Fact]
    public async Task SetPassword_WithAWrongAdminPassword_IsAdminRefused()
    {
        var user = await server.CreateLoginUserAsync(NewPassword(), "myadm");
        var fresh = NewPassword();
        var wrong = NewPassword();
        await FailsWith(RotatorFailure.AdminRefused,
            () => _rotator.SetPasswordAsync(Target(), new Credential(server.SuperUser, wrong), user, fresh, CancellationToken.None), fresh, wrong);
    }

    [Fact]
    public async Task SetPassword_ByAnAdminWithoutThePrivilege_IsAdminRefused_AndChangesNothing()
    {
        var adminPassword = NewPassword();
        var weakAdmin = await server.CreateLoginUserAsync(adminPassword, "myweak");
        var old = NewPassword();
        var user = await server.CreateLoginUserAsync(old, "myvictim");
        var fresh = NewPassword();

        await FailsWith(RotatorFailure.AdminRefused,
            () => _rotator.SetPasswordAsync(Target(), new Credential(weakAdmin, adminPassword), user, fresh, CancellationToken.None), fresh, adminPassword, NativePasswordHash.Compute(fresh));
        Assert.True(await server.CanLoginAsync(user, old));
    }

    [Fact]
    public async Task NothingListening_IsUnreachable_ForSetAndVerify()
    {
        var target = RotatorTestKit.Target("127.0.0.1", FreePort());
        var fresh = NewPassword();
        await FailsWith(RotatorFailure.Unreachable, () => _rotator.SetPasswordAsync(target, Admin, "svc", fresh, CancellationToken.None), fresh, server.SuperPassword);
        Assert.Equal(LoginOutcome.Unreachable, (await _rotator.VerifyLoginAsync(target, new Credential("svc", fresh), CancellationToken.None)).Outcome);
    }

    [Fact]
    public async Task AServerThatNeverAnswers_IsUnreachableAfterTheConnectTimeout()
    {
        await using var silent = new SilentServer();
        var target = RotatorTestKit.Target("127.0.0.1", silent.Port) with { ConnectTimeout = TimeSpan.FromSeconds(1) };
        LoginCheck? check = null;
        var elapsed = await TimeAsync(async () => check = await _rotator.VerifyLoginAsync(target, new Credential("svc", NewPassword()), CancellationToken.None));
        Assert.Equal(LoginOutcome.Unreachable, check!.Outcome);
        Assert.True(elapsed < TimeSpan.FromSeconds(10), $"took {elapsed}");
    }

    [Fact]
    public async Task Cancelling_AHungConnect_IsReportedAsCancellation_ByTheConnectTimeout()
    {
        // The driver does not observe the token while a hung server holds the handshake; it
        // gives up at the connect timeout, and the rotator then reports the cancellation, not a
        // failure of the target.
        await using var silent = new SilentServer();
        var target = RotatorTestKit.Target("127.0.0.1", silent.Port) with { ConnectTimeout = TimeSpan.FromSeconds(2) };
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var elapsed = await TimeAsync(() => Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => _rotator.SetPasswordAsync(target, Admin, "svc", NewPassword(), cancel.Token)));
        Assert.True(elapsed < TimeSpan.FromSeconds(10), $"took {elapsed}");
    }

    [Fact]
    public async Task EphemeralUser_LogsInUntilRevoked_ThenIsRefused_AndItsOpenSessionIsKilled()
    {
        var name = $"eph_{Guid.NewGuid():N}"[..24];
        var password = NewPassword();
        var user = new EphemeralUser(name, password, DateTimeOffset.UtcNow.AddHours(1), ["GRANT SELECT ON mysql.db TO {{name}}"]);

        await _rotator.CreateEphemeralUserAsync(Target(), Admin, user, CancellationToken.None);

        Assert.Equal(LoginOutcome.Accepted, (await _rotator.VerifyLoginAsync(Target(), new Credential(name, password), CancellationToken.None)).Outcome);
        AssertNoSecret(server.GeneralLogText(), password);
        await using var session = new MySqlConnection(server.ConnectionString(name, password));
        await session.OpenAsync();
        await using (var granted = new MySqlCommand("SELECT COUNT(*) FROM mysql.db", session))
        {
            await granted.ExecuteScalarAsync();
        }

        await _rotator.RevokeEphemeralUserAsync(Target(), Admin, name, CancellationToken.None);

        Assert.Equal(LoginOutcome.Refused, (await _rotator.VerifyLoginAsync(Target(), new Credential(name, password), CancellationToken.None)).Outcome);
        await using (var probe = new MySqlCommand("SELECT 1", session))
        {
            await Assert.ThrowsAnyAsync<Exception>(() => probe.ExecuteScalarAsync());
        }
        Assert.False(await UserExistsAsync(name));
        await _rotator.RevokeEphemeralUserAsync(Target(), Admin, name, CancellationToken.None);
    }

    [Fact]
    public async Task EphemeralUser_WhoseGrantFails_IsDroppedAgain()
    {
        var name = $"eph_{Guid.NewGuid():N}"[..24];
        var password = NewPassword();
        var user = new EphemeralUser(name, password, DateTimeOffset.UtcNow.AddHours(1), ["GRANT SELECT ON no_such_db.no_such_table TO {{name}}"]);

        var ex = await FailsWith(RotatorFailure.Other, () => _rotator.CreateEphemeralUserAsync(Target(), Admin, user, CancellationToken.None), password, NativePasswordHash.Compute(password));
        Assert.Contains("grant statement 1 of 1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("dropped again", ex.Message, StringComparison.Ordinal);
        Assert.False(await UserExistsAsync(name));
    }

    [Fact]
    public async Task EphemeralUser_ThatExistsAlready_IsOther_AndKeepsItsPassword()
    {
        var old = NewPassword();
        var name = await server.CreateLoginUserAsync(old, "myexists");
        var password = NewPassword();

        var ex = await FailsWith(RotatorFailure.Other,
            () => _rotator.CreateEphemeralUserAsync(Target(), Admin, new EphemeralUser(name, password, DateTimeOffset.UtcNow.AddHours(1), []), CancellationToken.None), password);
        Assert.Contains("already exists", ex.Message, StringComparison.Ordinal);
        Assert.True(await server.CanLoginAsync(name, old));
    }

    private async Task<bool> UserExistsAsync(string name)
    {
        await using var admin = new MySqlConnection(server.ConnectionString(server.SuperUser, server.SuperPassword));
        await admin.OpenAsync();
        await using var command = new MySqlCommand("SELECT COUNT(*) FROM mysql.user WHERE User = @name", admin);
        command.Parameters.AddWithValue("@name", name);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture) > 0;
    }
}
