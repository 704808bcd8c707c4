using MySqlConnector;
using Vault.Rotators;
using Vault.Rotators.MySql;
using static Vault.Tests.Rotators.RotatorTestKit;

namespace Vault.Tests.Rotators;

/// <summary>The MySQL rotator against the shared MariaDB 10.11 server: the rotator contract, and what only MySQL has.</summary>
[Collection("mariadb")]
public sealed class MySqlRotatorTests(MariaDbServer server) : EphemeralUserContractTests
{
    private readonly MySqlRotator _rotator = new();

    protected override ICredentialRotator Rotator => _rotator;

    protected override TargetConnection Target() => RotatorTestKit.Target(server.Host, server.Port);

    protected override Credential Admin => new(server.SuperUser, server.SuperPassword);

    protected override Task<string> CreateAccountAsync(string password, string prefix) => server.CreateLoginUserAsync(password, prefix);

    protected override Task<bool> CanLoginAsync(string account, string password) => server.CanLoginAsync(account, password);

    protected override string MissingAccount() => $"missing_{Guid.NewGuid():N}"[..24];

    protected override string RefusedLoginCode => "1045";

    // The general log: every statement the server was sent.
    protected override string ServerLog() => server.GeneralLogText();

    // The native hash logs in as well as the password does (mysql_native_password), so it is a secret too.
    protected override string[] SecretForms(string password) => [password, NativePasswordHash.Compute(password)];

    protected override string WorkingGrant => "GRANT SELECT ON mysql.db TO {{name}}";

    protected override string FailingGrant => "GRANT SELECT ON no_such_db.no_such_table TO {{name}}";


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
    public async Task SetPassword_ForTheUserNameOnAnotherHost_IsAccountNotFound()
    {
        var fresh = NewPassword();
        var user = await server.CreateLoginUserAsync(NewPassword(), "myhost");
        await FailsWith(RotatorFailure.AccountNotFound,
            () => _rotator.SetPasswordAsync(Target(), Admin, $"{user}@10.9.8.7", fresh, CancellationToken.None), fresh, NativePasswordHash.Compute(fresh));
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



    protected override async Task<bool> UserExistsAsync(string name)
    {
        await using var admin = new MySqlConnection(server.ConnectionString(server.SuperUser, server.SuperPassword));
        await admin.OpenAsync();
        await using var command = new MySqlCommand("SELECT COUNT(*) FROM mysql.user WHERE User = @name", admin);
        command.Parameters.AddWithValue("@name", name);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture) > 0;
    }
}
