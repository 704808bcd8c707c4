using System.Globalization;
using System.Text.RegularExpressions;

namespace Vault.Tests.Cli;

/// <summary><c>vaultctl role ...</c> (dynamic database roles) and <c>vaultctl lease ...</c>: local validation (nothing sent) and round trips.</summary>
/// <remarks>
/// Roles that are only written point at targets on a closed loopback port (writing a role needs no
/// database); the leases are real users on the run's PostgreSQL, made with its superuser.
/// </remarks>
[Collection("postgres")]
public sealed class CliLeaseTests(CliVaultFixture fixture, PostgresServer postgres) : IClassFixture<CliVaultFixture>
{
    /// <summary>Nothing listens on port 1 of the loopback interface.</summary>
    private const string ClosedPort = "1";

    private readonly VaultCtl _ctl = fixture.Ctl();

    /// <summary>
    /// Nothing listens here: a command that reached the network would fail to connect (exit 3), so
    /// exit 1 shows the input was refused before anything was sent.
    /// </summary>
    private static readonly VaultCtl Offline = new("http://127.0.0.1:1", "vt_unused");

    [Theory]
    [InlineData(new[] { "lease", "checkout", "reports", "--ttl", "soon" }, "--ttl: 'soon' is not a duration (use e.g. 90s, 30m, 1h30m, 7d)")]
    [InlineData(new[] { "lease", "checkout", "reports", "--ttl", "0" }, "--ttl: '0' is not a duration")]
    [InlineData(new[] { "lease", "renew", "dynamic/reports/x", "--increment", "-30m" }, "--increment: '-30m' is not a duration")]
    [InlineData(new[] { "lease", "revoke" }, "give a lease id, or --prefix to revoke every lease under it")]
    [InlineData(new[] { "lease", "revoke", "dynamic/reports/x", "--prefix", "dynamic/reports/" }, "a lease id and --prefix: give one of the two")]
    [InlineData(new[] { "lease", "revoke", "--prefix", "" }, "--prefix: the prefix is empty, which would revoke every lease")]
    [InlineData(new[] { "role", "write", "reports", "--target", "pg", "--statement", "" }, "--statement: the statement is empty")]
    [InlineData(new[] { "role", "write", "reports", "--target", "pg", "--statement", "GRANT CONNECT ON DATABASE app TO {{name}}", "--statement", "  " }, "--statement 2 of 2: the statement is empty")]
    [InlineData(new[] { "role", "write", "reports", "--target", "pg", "--statement-file", "/nonexistent/grants.sql" }, "cannot read statements from '/nonexistent/grants.sql'")]
    [InlineData(new[] { "role", "write", "reports", "--target", "pg", "--default-ttl", "1 hour" }, "--default-ttl: '1 hour' is not a duration")]
    [InlineData(new[] { "role", "write", "reports", "--target", "pg", "--max-ttl", "forever" }, "--max-ttl: 'forever' is not a duration")]
    [InlineData(new[] { "role", "write", "reports", "--target", "pg", "--default-ttl", "2d", "--max-ttl", "24h" }, "--default-ttl 2d is longer than --max-ttl 1d")]
    [InlineData(new[] { "role", "write", "reports" }, "Option '--target' is required")]
    [InlineData(new[] { "lease", "checkout" }, "give a dynamic role, or --set to borrow an account of a check-out set")]
    [InlineData(new[] { "lease", "renew" }, "vaultctl lease renew --help")]
    [InlineData(new[] { "lease", "lookup" }, "vaultctl lease lookup --help")]
    [InlineData(new[] { "role", "read" }, "vaultctl role read --help")]
    [InlineData(new[] { "role", "delete" }, "vaultctl role delete --help")]
    [InlineData(new[] { "lease", "list", "dynamic/a/", "dynamic/b/" }, "Unrecognized")]
    public async Task BadLocalInput_IsOneLineUsageErrorAndSendsNothing(string[] args, string message)
    {
        var result = await Offline.RunAsync(args);

        result.OneLineError(1, message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n\n  \n")]
    [InlineData(";\n  ;\n")]
    public async Task RoleWrite_WithAStatementFileHoldingNoStatement_IsUsageError(string content)
    {
        var file = Path.GetTempFileName();
        await File.WriteAllTextAsync(file, content);
        try
        {
            var result = await Offline.RunAsync("role", "write", "reports", "--target", "pg", "--statement-file", file);

            result.OneLineError(1, $"--statement-file: '{file}' holds no statement");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task RoleWrite_WithValidInput_GoesToTheServer()
    {
        // The counterpart of the tests above: well-formed input is sent, so the run fails to connect.
        var result = await Offline.RunAsync("role", "write", "reports", "--target", "pg", "--statement", "GRANT CONNECT ON DATABASE app TO {{name}}",
            "--default-ttl", "1h", "--max-ttl", "1h");

        result.OneLineError(3, "vaultctl: cannot connect to http://127.0.0.1:1: ");
    }

    [Theory]
    [InlineData("role", "write", "read", "list", "delete")]
    [InlineData("lease", "checkout", "renew", "revoke", "lookup", "list")]
    public async Task Help_ListsEveryCommand(string group, params string[] commands)
    {
        var help = (await Offline.RunAsync(group, "--help")).Ok();

        foreach (var command in commands)
        {
            Assert.Matches($@"(?m)^\s+{command}\b", help);
        }
    }

    [Fact]
    public async Task RoleHelp_SaysItIsNotAppRole()
    {
        var help = (await Offline.RunAsync("role", "--help")).Ok();

        Assert.Contains("Dynamic database roles", help, StringComparison.Ordinal);
        Assert.Contains("'approle'", help, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RoleWrite_WithUnknownTarget_IsInvalidArgumentNamingRoleTarget()
    {
        var name = CliVaultFixture.Unique("nowhere");
        var target = CliVaultFixture.Unique("no-such-target");

        var result = await _ctl.RunAsync("role", "write", name, "--target", target, "--statement", "GRANT CONNECT ON DATABASE postgres TO {{name}}");

        var line = result.OneLineError(2, "vaultctl: InvalidArgument: role.target: ");
        Assert.Contains(target, line, StringComparison.Ordinal);
        (await _ctl.RunAsync("role", "read", name)).OneLineError(2, "vaultctl: NotFound: ");
    }

    [Fact]
    public async Task RoleWrite_OnAnLdapTarget_IsInvalidArgument_ItCannotMakeUsers()
    {
        var target = await AddTargetAsync("ldap", "ldap", "cn=app,dc=example,dc=org");

        var result = await _ctl.RunAsync("role", "write", CliVaultFixture.Unique("ldap-role"), "--target", target);

        var line = result.OneLineError(2, "vaultctl: InvalidArgument: role.target: ");
        Assert.Contains("ldap", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RoleWriteReadListDelete_RoundTripsTheStatementsInOrder()
    {
        var target = await AddTargetAsync("stmts", "postgres", "app");
        var name = CliVaultFixture.Unique("reports");
        var file = Path.GetTempFileName();
        // Two statements from the file, the first over two lines; the ';' inside a line stays.
        await File.WriteAllTextAsync(file, "GRANT SELECT\n  ON ALL TABLES IN SCHEMA public TO {{name}};\n\nCOMMENT ON ROLE {{name}} IS 'a;b';\n");
        try
        {
            var written = (await _ctl.RunAsync("role", "write", name, "--target", target, "--statement", "GRANT CONNECT ON DATABASE postgres TO {{name}}",
                "--statement-file", file, "--default-ttl", "15m", "--max-ttl", "2h", "--json")).Json();

            Assert.Equal(name, written.GetProperty("name").GetString());
            Assert.Equal(target, written.GetProperty("target").GetString());
            Assert.Equal(
                ["GRANT CONNECT ON DATABASE postgres TO {{name}}", "GRANT SELECT\n  ON ALL TABLES IN SCHEMA public TO {{name}}", "COMMENT ON ROLE {{name}} IS 'a;b'"],
                written.GetProperty("creation_statements").EnumerateArray().Select(e => e.GetString()));
            Assert.Equal(900, written.GetProperty("default_ttl_seconds").GetInt64());
            Assert.Equal(7200, written.GetProperty("max_ttl_seconds").GetInt64());

            var read = (await _ctl.RunAsync("role", "read", name)).Ok();
            Assert.Matches($@"(?m)^Target +{Regex.Escape(target)}$", read);
            Assert.Matches(@"(?m)^Default TTL +15m$", read);
            Assert.Matches(@"(?m)^Max TTL +2h$", read);
            Assert.Matches(@"(?m)^Statement 2 +GRANT SELECT ON ALL TABLES IN SCHEMA public TO \{\{name\}\}$", read);
            Assert.Contains(name, (await _ctl.RunAsync("role", "list", "--json")).Json().GetProperty("names").EnumerateArray().Select(n => n.GetString()));

            // The defaults the server fills in when no TTL is given.
            var defaults = (await _ctl.RunAsync("role", "write", name, "--target", target, "--json")).Json();
            Assert.Equal(3600, defaults.GetProperty("default_ttl_seconds").GetInt64());
            Assert.Equal(86400, defaults.GetProperty("max_ttl_seconds").GetInt64());
            Assert.Empty(defaults.GetProperty("creation_statements").EnumerateArray());

            Assert.True((await _ctl.RunAsync("role", "delete", name, "--json")).Json().GetProperty("deleted").GetBoolean());
            (await _ctl.RunAsync("role", "read", name)).OneLineError(2, "vaultctl: NotFound: ");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task CheckoutListRenewRevoke_AgainstRealPostgres_TheCredentialLogsInUntilRevoked()
    {
        var role = await PostgresRoleAsync("checkout");

        var before = DateTimeOffset.UtcNow;
        var issued = (await _ctl.RunAsync("lease", "checkout", role, "--ttl", "10m", "--json")).Json();
        var lease = issued.GetProperty("lease");
        var leaseId = lease.GetProperty("id").GetString()!;
        var username = issued.GetProperty("username").GetString()!;
        var password = issued.GetProperty("password").GetString()!;

        Assert.StartsWith($"dynamic/{role}/", leaseId, StringComparison.Ordinal);
        Assert.Equal(username, lease.GetProperty("username").GetString());
        Assert.Equal("active", lease.GetProperty("state").GetString());
        Assert.Equal(role, lease.GetProperty("role").GetString());
        var expires = lease.GetProperty("expires_at").GetDateTimeOffset();
        Assert.InRange(expires, before.AddMinutes(10).AddSeconds(-5), DateTimeOffset.UtcNow.AddMinutes(10).AddSeconds(5));
        Assert.True(await postgres.CanLoginAsync(username, password), "the credential lease checkout printed does not log in");

        var table = (await _ctl.RunAsync("lease", "list", $"dynamic/{role}/")).Ok().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^ID +ROLE +USERNAME +STATE +EXPIRES +TOKEN$", table[0]);
        Assert.Equal(3, table.Length);
        Assert.Matches($@"^{Regex.Escape(leaseId)} +{Regex.Escape(role)} +{username} +active +\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\dZ +va_\S+$", table[2]);
        var lookup = (await _ctl.RunAsync("lease", "lookup", leaseId)).Ok();
        Assert.Matches($@"(?m)^Username +{username}$", lookup);
        Assert.Matches(@"(?m)^State +active$", lookup);
        foreach (var output in new[] { string.Join('\n', table), lookup, (await _ctl.RunAsync("lease", "list", "--json")).Ok() })
        {
            Assert.DoesNotContain(password, output, StringComparison.Ordinal);
        }

        var renewed = (await _ctl.RunAsync("lease", "renew", leaseId, "--increment", "30m", "--json")).Json();
        Assert.True(renewed.GetProperty("expires_at").GetDateTimeOffset() > expires.AddMinutes(15), "renew did not move the expiry");
        (await _ctl.RunAsync("role", "delete", role)).OneLineError(2, "vaultctl: FailedPrecondition: ");

        var revoked = (await _ctl.RunAsync("lease", "revoke", leaseId)).Ok();

        Assert.StartsWith($"Lease '{leaseId}' revoked", revoked, StringComparison.Ordinal);
        // Dropping the user may be retried in the background: allow it a little while.
        await WaitUntilAsync(async () => !await postgres.CanLoginAsync(username, password), "the revoked credential to be refused");
        // Once its user is dropped the server forgets the lease.
        await WaitUntilAsync(async () => (await _ctl.RunAsync("lease", "lookup", leaseId)).ExitCode == 2, "the revoked lease to be forgotten");
        (await _ctl.RunAsync("lease", "lookup", leaseId)).OneLineError(2, $"vaultctl: NotFound: no lease '{leaseId}'");
        Assert.DoesNotContain(leaseId, (await _ctl.RunAsync("lease", "list")).Ok(), StringComparison.Ordinal);
        (await _ctl.RunAsync("role", "delete", role)).Ok();
    }

    [Fact]
    public async Task RevokePrefix_EndsEveryLeaseOfTheRole_AndCountsThem()
    {
        var role = await PostgresRoleAsync("prefix");
        var other = await PostgresRoleAsync("prefix-other");
        var credentials = new List<(string Username, string Password)>();
        for (var i = 0; i < 2; i++)
        {
            // Without --json: the fields a person reads are enough to log in.
            var human = (await _ctl.RunAsync("lease", "checkout", role)).Ok();
            Assert.Matches($@"(?m)^Lease ID +dynamic/{Regex.Escape(role)}/[0-9a-f]+$", human);
            credentials.Add((Field(human, "Username"), Field(human, "Password")));
        }
        var kept = (await _ctl.RunAsync("lease", "checkout", other, "--json")).Json();
        (await _ctl.RunAsync("lease", "checkout", role, "--ttl", "2d")).OneLineError(2, "vaultctl: InvalidArgument: ttl: ");

        var result = (await _ctl.RunAsync("lease", "revoke", "--prefix", $"dynamic/{role}/", "--json")).Json();

        Assert.Equal(2, result.GetProperty("revoked").GetInt32());
        foreach (var (username, password) in credentials)
        {
            await WaitUntilAsync(async () => !await postgres.CanLoginAsync(username, password), $"{username} to be refused after revoke --prefix");
        }
        Assert.True(await postgres.CanLoginAsync(kept.GetProperty("username").GetString()!, kept.GetProperty("password").GetString()!),
            "a lease outside the prefix was revoked too");
        Assert.Empty((await _ctl.RunAsync("lease", "list", $"dynamic/{role}/", "--json")).Json().GetProperty("leases").EnumerateArray());
        Assert.Equal($"Revoked 1 lease under 'dynamic/{other}/'\n", (await _ctl.RunAsync("lease", "revoke", "--prefix", $"dynamic/{other}/")).Ok());
    }

    [Fact]
    public async Task Checkout_WhenACreationStatementFails_IsFailedPreconditionAndLeavesNoLease()
    {
        var role = await PostgresRoleAsync("badsql", "GRANT SELECT ON no_such_table_anywhere TO {{name}}");

        var result = await _ctl.RunAsync("lease", "checkout", role, "--json");

        var line = result.OneLineError(2, "vaultctl: FailedPrecondition: ");
        Assert.Contains("no_such_table_anywhere", line, StringComparison.Ordinal);
        await WaitUntilAsync(async () => (await _ctl.RunAsync("lease", "list", $"dynamic/{role}/", "--json")).Json().GetProperty("leases").GetArrayLength() == 0,
            "the failed checkout's lease to be ended");
    }

    /// <summary>A rotation target on the run's PostgreSQL whose admin credential is the superuser, and a dynamic role on it.</summary>
    private async Task<string> PostgresRoleAsync(string prefix, string statement = "GRANT CONNECT ON DATABASE postgres TO {{name}}")
    {
        var target = CliVaultFixture.Unique($"{prefix}-pg");
        var admin = $"cli-lease/{target}/admin";
        (await _ctl.RunAsync("kv", "put", admin, $"username={postgres.SuperUser}", $"password={postgres.SuperPassword}")).Ok();
        // The target's own account is never rotated here (no schedule); it only has to exist.
        var accountPassword = $"acct-{Guid.NewGuid():N}";
        var account = await postgres.CreateLoginRoleAsync(accountPassword, "clilease");
        (await _ctl.RunWithInputAsync(accountPassword + "\n", "target", "add", target, "--kind", "postgres", "--host", postgres.Host,
            "--port", postgres.Port.ToString(CultureInfo.InvariantCulture), "--database", postgres.Database,
            "--account", account, "--admin-secret", admin, "--current-password-stdin")).Ok();
        var role = CliVaultFixture.Unique(prefix);
        (await _ctl.RunAsync("role", "write", role, "--target", target, "--statement", statement, "--default-ttl", "15m", "--max-ttl", "1h")).Ok();
        return role;
    }

    /// <summary>A target on a closed port: enough for writing roles, which needs no database.</summary>
    private async Task<string> AddTargetAsync(string prefix, string kind, string account)
    {
        var name = CliVaultFixture.Unique(prefix);
        var admin = $"cli-lease/{name}/admin";
        (await _ctl.RunAsync("kv", "put", admin, "username=vault_admin", "password=admin-not-used")).Ok();
        (await _ctl.RunWithInputAsync("today\n", "target", "add", name, "--kind", kind, "--host", "127.0.0.1", "--port", ClosedPort, "--skip-verify",
            "--account", account, "--admin-secret", admin, "--current-password-stdin")).Ok();
        return name;
    }

    private static string Field(string output, string label) =>
        Regex.Match(output, $@"(?m)^{label} +(\S+)$") is { Success: true } match ? match.Groups[1].Value : throw new Xunit.Sdk.XunitException($"no {label} line in:\n{output}");

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException($"timed out after 30 s waiting for {what}");
            }
            await Task.Delay(250);
        }
    }
}
