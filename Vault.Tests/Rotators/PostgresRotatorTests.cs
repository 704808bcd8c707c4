using Npgsql;
using Vault.Rotators;
using Vault.Rotators.Postgres;
using static Vault.Tests.Rotators.RotatorTestKit;

namespace Vault.Tests.Rotators;

/// <summary>The PostgreSQL rotator against the shared PostgreSQL 15: the rotator contract, and what only PostgreSQL has.</summary>
[Collection("postgres")]
public sealed class PostgresRotatorTests(PostgresServer server) : EphemeralUserContractTests, IDisposable
{
    private readonly PostgresRotator _rotator = new();

    public void Dispose() => _rotator.Dispose();

    protected override ICredentialRotator Rotator => _rotator;

    protected override TargetConnection Target() => RotatorTestKit.Target(server.Host, server.Port, server.Database);

    protected override Credential Admin => new(server.SuperUser, server.SuperPassword);

    protected override Task<string> CreateAccountAsync(string password, string prefix) => server.CreateLoginRoleAsync(password, prefix);

    protected override Task<bool> CanLoginAsync(string account, string password) => server.CanLoginAsync(account, password);

    protected override string MissingAccount() => $"missing_{Guid.NewGuid():N}";

    protected override string RefusedLoginCode => "28P01";

    protected override string? AccountNotFoundCode => "42704";

    protected override string? NoPrivilegeCode => "42501";

    protected override string ServerLog() => server.LogText();

    protected override string WorkingGrant => $"GRANT CONNECT ON DATABASE \"{server.Database}\" TO {{{{name}}}}";

    protected override string FailingGrant => "GRANT SELECT ON no_such_table TO {{name}}";

    protected override Task<bool> UserExistsAsync(string name) => RoleExistsAsync(name);

    private async Task<bool> RoleExistsAsync(string name)
    {
        await using var admin = new NpgsqlConnection(server.ConnectionString(server.SuperUser, server.SuperPassword));
        await admin.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM pg_roles WHERE rolname = $1", admin) { Parameters = { new() { Value = name } } };
        return (long)(await command.ExecuteScalarAsync())! > 0;
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
    public async Task EphemeralUsers_RevokedTogether_LoseTheirOpenSessions_AndAGrantOfSeveralStatementsStillWorks()
    {
        var users = Enumerable.Range(0, 3).Select(_ => new EphemeralUser($"eph_{Guid.NewGuid():N}"[..24], NewPassword(), DateTimeOffset.UtcNow.AddHours(1),
            [$"GRANT CONNECT ON DATABASE \"{server.Database}\" TO {{{{name}}}}; GRANT TEMPORARY ON DATABASE \"{server.Database}\" TO {{{{name}}}}"])).ToList();
        var sessions = new List<NpgsqlConnection>();
        try
        {
            foreach (var user in users)
            {
                await _rotator.CreateEphemeralUserAsync(Target(), Admin, user, CancellationToken.None);
                var session = new NpgsqlConnection(server.ConnectionString(user.Username, user.Password));
                sessions.Add(session);
                await session.OpenAsync();
                // A session in the middle of a transaction holding a lock on a table it made.
                await using var hold = new NpgsqlCommand("BEGIN; CREATE TEMPORARY TABLE held (v int); LOCK TABLE held IN ACCESS EXCLUSIVE MODE", session);
                await hold.ExecuteNonQueryAsync();
            }

            Assert.Empty(await _rotator.RevokeEphemeralUsersAsync(Target(), Admin, [.. users.Select(u => u.Username)], CancellationToken.None));

            foreach (var (user, session) in users.Zip(sessions))
            {
                Assert.False(await RoleExistsAsync(user.Username), $"{user.Username} is left behind");
                await using var probe = new NpgsqlCommand("SELECT 1", session);
                await Assert.ThrowsAnyAsync<Exception>(() => probe.ExecuteScalarAsync());
            }
        }
        finally
        {
            foreach (var session in sessions)
            {
                await session.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task EphemeralUsers_RevokedTogether_EndTheirSessions_AndOneTheServerRefusesToDrop_IsTheOnlyOneLeft()
    {
        var users = Enumerable.Range(0, 4).Select(_ => new EphemeralUser($"eph_{Guid.NewGuid():N}"[..24], NewPassword(), DateTimeOffset.UtcNow.AddHours(1),
            [$"GRANT CONNECT ON DATABASE \"{server.Database}\" TO {{{{name}}}}"])).ToList();
        foreach (var user in users)
        {
            await _rotator.CreateEphemeralUserAsync(Target(), Admin, user, CancellationToken.None);
        }
        await using var session = new NpgsqlConnection(server.ConnectionString(users[0].Username, users[0].Password));
        await session.OpenAsync();
        // A privilege in another database: DROP OWNED in the target's database cannot revoke it, so
        // PostgreSQL refuses to drop that role (2BP01).
        var other = $"other_{Guid.NewGuid():N}"[..20];
        var stuck = users[2];
        await server.ExecuteAsync($"CREATE DATABASE {other}");
        try
        {
            await using (var elsewhere = new NpgsqlConnection(server.ConnectionString(server.SuperUser, server.SuperPassword, other)))
            {
                await elsewhere.OpenAsync();
                await using var grant = new NpgsqlCommand($"CREATE TABLE kept (v int); GRANT SELECT ON kept TO {stuck.Username}", elsewhere);
                await grant.ExecuteNonQueryAsync();
            }

            var refused = await _rotator.RevokeEphemeralUsersAsync(Target(), Admin, [.. users.Select(u => u.Username)], CancellationToken.None);

            var (name, why) = Assert.Single(refused);
            Assert.Equal(stuck.Username, name);
            Assert.Contains("2BP01", why, StringComparison.Ordinal);
            Assert.Contains(stuck.Username, why, StringComparison.Ordinal);
            AssertNoSecret(why, stuck.Password);
            foreach (var user in users.Where(u => u != stuck))
            {
                Assert.False(await RoleExistsAsync(user.Username), $"{user.Username} is left behind");
            }
            Assert.True(await RoleExistsAsync(stuck.Username));
            // Its login was taken away with the others' (a retry ends it): only the drop is left.
            Assert.Equal(LoginOutcome.Refused, (await _rotator.VerifyLoginAsync(Target(), new Credential(stuck.Username, stuck.Password), CancellationToken.None)).Outcome);
            await using (var probe = new NpgsqlCommand("SELECT 1", session))
            {
                await Assert.ThrowsAnyAsync<Exception>(() => probe.ExecuteScalarAsync());
            }
        }
        finally
        {
            await server.ExecuteAsync($"DROP DATABASE {other} WITH (FORCE)");
        }
        Assert.Empty(await _rotator.RevokeEphemeralUsersAsync(Target(), Admin, [stuck.Username], CancellationToken.None));
        Assert.False(await RoleExistsAsync(stuck.Username));
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

}
