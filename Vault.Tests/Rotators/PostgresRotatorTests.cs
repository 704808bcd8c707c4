using Npgsql;
using Vault.Rotators;
using Vault.Rotators.Postgres;
using static Vault.Tests.Rotators.RotatorTestKit;

namespace Vault.Tests.Rotators;

[Collection("postgres")]
public sealed class PostgresRotatorTests(PostgresServer server) : IDisposable
{
    private readonly PostgresRotator _rotator = new();

    public void Dispose() => _rotator.Dispose();

    private TargetConnection Target() => RotatorTestKit.Target(server.Host, server.Port, server.Database);

    private Credential Admin => new(server.SuperUser, server.SuperPassword);

    private async Task<bool> RoleExistsAsync(string name)
    {
        await using var admin = new NpgsqlConnection(server.ConnectionString(server.SuperUser, server.SuperPassword));
        await admin.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM pg_roles WHERE rolname = $1", admin) { Parameters = { new() { Value = name } } };
        return (long)(await command.ExecuteScalarAsync())! > 0;
    }

    [Fact]
    public async Task SetPassword_NewPasswordLogsIn_AndTheOldIsRefused()
    {
        var old = NewPassword();
        var role = await server.CreateLoginRoleAsync(old, "pgrot");
        var fresh = NewPassword();

        await _rotator.SetPasswordAsync(Target(), Admin, role, fresh, CancellationToken.None);

        Assert.True(await server.CanLoginAsync(role, fresh));
        Assert.False(await server.CanLoginAsync(role, old));
        Assert.Equal(LoginOutcome.Accepted, (await _rotator.VerifyLoginAsync(Target(), new Credential(role, fresh), CancellationToken.None)).Outcome);
        var refused = await _rotator.VerifyLoginAsync(Target(), new Credential(role, old), CancellationToken.None);
        Assert.Equal(LoginOutcome.Refused, refused.Outcome);
        Assert.Contains("28P01", refused.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SetPassword_Repeatedly_RunsOnOnePooledAdminSession_NotALoginEach()
    {
        var adminPassword = NewPassword();
        var admin = $"pgadm_{Guid.NewGuid():N}"[..20];
        await server.ExecuteAsync($"CREATE ROLE {admin} LOGIN CREATEROLE PASSWORD '{adminPassword}'");
        var role = await server.CreateLoginRoleAsync(NewPassword(), "pgpool");
        string last = "";
        for (var i = 0; i < 5; i++)
        {
            last = NewPassword();
            await _rotator.SetPasswordAsync(Target(), new Credential(admin, adminPassword), role, last, CancellationToken.None);
        }

        Assert.True(await server.CanLoginAsync(role, last));
        var sessions = await server.ScalarAsync($"SELECT count(*) FROM pg_stat_activity WHERE usename = '{admin}'");
        Assert.Equal(1L, sessions);
    }

    [Fact]
    public async Task SetPassword_AfterTheServerRestarted_ReplacesTheDeadPooledSession_AndSucceeds()
    {
        await using var own = await PostgresServer.StartAsync();
        var target = RotatorTestKit.Target(own.Host, own.Port, own.Database);
        var admin = new Credential(own.SuperUser, own.SuperPassword);
        var role = await own.CreateLoginRoleAsync(NewPassword(), "pgrst");
        await _rotator.SetPasswordAsync(target, admin, role, NewPassword(), CancellationToken.None);

        await own.RestartAsync();
        var after = NewPassword();
        await _rotator.SetPasswordAsync(target, admin, role, after, CancellationToken.None);

        Assert.True(await own.CanLoginAsync(role, after));
    }

    [Fact]
    public async Task SetPassword_SendsOnlyTheScramVerifier_SoTheStatementLogNeverHoldsThePlaintext()
    {
        var role = await server.CreateLoginRoleAsync(NewPassword(), "pglog");
        var fresh = NewPassword();

        await _rotator.SetPasswordAsync(Target(), Admin, role, fresh, CancellationToken.None);

        Assert.True(await server.CanLoginAsync(role, fresh));
        var log = server.LogText();
        // The statement is there (log_statement = all), with the verifier in place of the password.
        Assert.Contains($"ALTER ROLE \"{role}\" PASSWORD 'SCRAM-SHA-256$4096:", log, StringComparison.Ordinal);
        AssertNoSecret(log, fresh);
    }

    [Fact]
    public async Task SetPassword_QuotesRoleNamesWithQuotesAndBackslashes()
    {
        var role = $"Odd \"q\" o'b\\x {Guid.NewGuid():N}"[..40];
        await server.ExecuteAsync($"CREATE ROLE {PostgresSql.QuoteIdentifier(role)} LOGIN");
        var fresh = NewPassword();

        await _rotator.SetPasswordAsync(Target(), Admin, role, fresh, CancellationToken.None);

        Assert.True(await server.CanLoginAsync(role, fresh));
        Assert.Equal(LoginOutcome.Accepted, (await _rotator.VerifyLoginAsync(Target(), new Credential(role, fresh), CancellationToken.None)).Outcome);
    }

    [Fact]
    public async Task SetPassword_ForARoleWithoutLogin_Succeeds_ButVerifyIsRefused()
    {
        var role = await server.CreateLoginRoleAsync(NewPassword(), "pgnologin");
        await server.ExecuteAsync($"ALTER ROLE \"{role}\" NOLOGIN");
        var fresh = NewPassword();

        await _rotator.SetPasswordAsync(Target(), Admin, role, fresh, CancellationToken.None);

        var check = await _rotator.VerifyLoginAsync(Target(), new Credential(role, fresh), CancellationToken.None);
        Assert.Equal(LoginOutcome.Refused, check.Outcome);
        Assert.Contains("not permitted to log in", check.Reason, StringComparison.Ordinal);
        Assert.Contains("28000", check.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SetPassword_ForAMissingRole_IsAccountNotFound()
    {
        var fresh = NewPassword();
        var ex = await FailsWith(RotatorFailure.AccountNotFound,
            () => _rotator.SetPasswordAsync(Target(), Admin, $"missing_{Guid.NewGuid():N}", fresh, CancellationToken.None), fresh, server.SuperPassword);
        Assert.Contains("set password", ex.Message, StringComparison.Ordinal);
        Assert.Contains("42704", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SetPassword_WithAWrongAdminPassword_IsAdminRefused()
    {
        var role = await server.CreateLoginRoleAsync(NewPassword(), "pgadm");
        var fresh = NewPassword();
        var wrong = NewPassword();
        await FailsWith(RotatorFailure.AdminRefused,
            () => _rotator.SetPasswordAsync(Target(), new Credential(server.SuperUser, wrong), role, fresh, CancellationToken.None), fresh, wrong);
    }

    [Fact]
    public async Task SetPassword_ByAnAdminWithoutThePrivilege_IsAdminRefused_AndChangesNothing()
    {
        var adminPassword = NewPassword();
        var weakAdmin = await server.CreateLoginRoleAsync(adminPassword, "pgweak");
        var old = NewPassword();
        var role = await server.CreateLoginRoleAsync(old, "pgvictim");
        var fresh = NewPassword();

        var ex = await FailsWith(RotatorFailure.AdminRefused,
            () => _rotator.SetPasswordAsync(Target(), new Credential(weakAdmin, adminPassword), role, fresh, CancellationToken.None), fresh, adminPassword);
        Assert.Contains("42501", ex.Message, StringComparison.Ordinal);
        Assert.True(await server.CanLoginAsync(role, old));
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
    public async Task EphemeralUser_LogsInUntilRevoked_ThenIsRefused_AndItsOpenSessionIsTerminated()
    {
        var name = $"eph_{Guid.NewGuid():N}"[..24];
        var password = NewPassword();
        var expires = DateTimeOffset.UtcNow.AddHours(1);
        var user = new EphemeralUser(name, password, expires, [$"GRANT CONNECT ON DATABASE \"{server.Database}\" TO {{{{name}}}}", "GRANT pg_read_all_settings TO {{name}}"]);

        await _rotator.CreateEphemeralUserAsync(Target(), Admin, user, CancellationToken.None);

        Assert.Equal(LoginOutcome.Accepted, (await _rotator.VerifyLoginAsync(Target(), new Credential(name, password), CancellationToken.None)).Outcome);
        AssertNoSecret(server.LogText(), password);
        await using var session = new NpgsqlConnection(server.ConnectionString(name, password));
        await session.OpenAsync();
        await using (var validUntil = new NpgsqlCommand("SELECT rolvaliduntil FROM pg_roles WHERE rolname = current_user", session))
        {
            var stored = (DateTime)(await validUntil.ExecuteScalarAsync())!;
            Assert.True(Math.Abs((stored.ToUniversalTime() - expires.UtcDateTime).TotalSeconds) < 1, $"VALID UNTIL {stored:O}, expected {expires:O}");
        }

        await _rotator.RevokeEphemeralUserAsync(Target(), Admin, name, CancellationToken.None);

        Assert.Equal(LoginOutcome.Refused, (await _rotator.VerifyLoginAsync(Target(), new Credential(name, password), CancellationToken.None)).Outcome);
        await using (var probe = new NpgsqlCommand("SELECT 1", session))
        {
            await Assert.ThrowsAnyAsync<Exception>(() => probe.ExecuteScalarAsync());
        }
        Assert.False(await RoleExistsAsync(name));
        // Revoking what is already gone succeeds.
        await _rotator.RevokeEphemeralUserAsync(Target(), Admin, name, CancellationToken.None);
    }

    [Fact]
    public async Task ManyEphemeralUsers_CreatedAndRevokedAtOnce_OnTheSameDatabase_AllSucceed()
    {
        // Concurrent GRANTs on (and DROP OWNEDs of) one database update its one catalog row, and
        // PostgreSQL refuses all but one with XX000 "tuple concurrently updated": many apps asking
        // for credentials at once must not see that.
        var users = Enumerable.Range(0, 24).Select(_ => new EphemeralUser(
            $"eph_{Guid.NewGuid():N}"[..24], NewPassword(), DateTimeOffset.UtcNow.AddHours(1),
            [$"GRANT CONNECT ON DATABASE \"{server.Database}\" TO {{{{name}}}}", $"GRANT TEMPORARY ON DATABASE \"{server.Database}\" TO {{{{name}}}}"])).ToList();

        await Task.WhenAll(users.Select(u => Task.Run(() => _rotator.CreateEphemeralUserAsync(Target(), Admin, u, CancellationToken.None))));

        foreach (var user in users)
        {
            Assert.Equal(LoginOutcome.Accepted, (await _rotator.VerifyLoginAsync(Target(), new Credential(user.Username, user.Password), CancellationToken.None)).Outcome);
        }
        await Task.WhenAll(users.Select(u => Task.Run(() => _rotator.RevokeEphemeralUserAsync(Target(), Admin, u.Username, CancellationToken.None))));
        foreach (var user in users)
        {
            Assert.False(await RoleExistsAsync(user.Username), $"{user.Username} is left behind");
        }
    }

    [Fact]
    public async Task EphemeralUser_PastItsExpiry_IsRefusedByTheServerItself()
    {
        var name = $"eph_{Guid.NewGuid():N}"[..24];
        var password = NewPassword();
        await _rotator.CreateEphemeralUserAsync(Target(), Admin, new EphemeralUser(name, password, DateTimeOffset.UtcNow.AddMinutes(-1), []), CancellationToken.None);

        Assert.Equal(LoginOutcome.Refused, (await _rotator.VerifyLoginAsync(Target(), new Credential(name, password), CancellationToken.None)).Outcome);
        await _rotator.RevokeEphemeralUserAsync(Target(), Admin, name, CancellationToken.None);
    }

    [Fact]
    public async Task EphemeralUser_WhoseGrantFails_IsNotLeftBehind()
    {
        var name = $"eph_{Guid.NewGuid():N}"[..24];
        var password = NewPassword();
        var user = new EphemeralUser(name, password, DateTimeOffset.UtcNow.AddHours(1), ["GRANT SELECT ON no_such_table TO {{name}}"]);

        var ex = await FailsWith(RotatorFailure.Other, () => _rotator.CreateEphemeralUserAsync(Target(), Admin, user, CancellationToken.None), password);
        Assert.Contains("grant statement 1 of 1", ex.Message, StringComparison.Ordinal);
        Assert.False(await RoleExistsAsync(name));
    }
}
