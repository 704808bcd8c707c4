
namespace Vault.Tests.Cli;

/// <summary><c>vaultctl target ...</c>: local validation (nothing sent) and round trips against a real server.</summary>
/// <remarks>
/// Targets here point at a closed loopback port: registering, reading, pausing and the credential
/// need no database, and a rotation fails at its first contact with the host. One test rotates a
/// role on the run's real PostgreSQL.
/// </remarks>
[Collection("postgres")]
public sealed class CliTargetTests(CliVaultFixture fixture, PostgresServer postgres) : IClassFixture<CliVaultFixture>
{
    /// <summary>Nothing listens on port 1 of the loopback interface.</summary>
    private const string ClosedPort = "1";

    private readonly VaultCtl _ctl = fixture.Ctl();

    /// <summary>
    /// Nothing listens here: a command that reached the network would fail to connect (exit 3), so
    /// exit 1 shows the input was refused before anything was sent.
    /// </summary>
    private static readonly VaultCtl Offline = new("http://127.0.0.1:1", "vt_unused");

    private static string[] AddArgs(params string[] extra) =>
        ["target", "add", "billing-db", "--kind", "postgres", "--host", "127.0.0.1", "--account", "billing", "--admin-secret", "infra/pg-admin", .. extra];

    [Theory]
    [InlineData(new[] { "--interval", "24h", "--cron", "0 3 * * *" }, "--interval and --cron: give one of the two")]
    [InlineData(new[] { "--interval", "daily" }, "--interval: 'daily' is not a duration")]
    [InlineData(new[] { "--window", "1-5" }, "--window: '1-5' is not a daily window (use HH:MM-HH:MM")]
    [InlineData(new[] { "--window", "01:00" }, "--window: '01:00' is not a daily window")]
    [InlineData(new[] { "--window", "22:00-24:00" }, "--window: '22:00-24:00' is not a daily window")]
    [InlineData(new[] { "--window", "01:00-05:60" }, "--window: '01:00-05:60' is not a daily window")]
    [InlineData(new[] { "--max-jitter", "-5m" }, "--max-jitter: '-5m' is not a duration")]
    [InlineData(new[] { "--require", "lower,emoji" }, "--require: 'emoji' is not a character class (use lower, upper, digit, symbol, or none)")]
    [InlineData(new[] { "--require", "," }, "--require: name at least one character class")]
    [InlineData(new[] { "--strategy", "both" }, "--strategy: 'both' is not single-user or alternating-users")]
    [InlineData(new[] { "--port", "-1" }, "--port")]
    [InlineData(new[] { "--option", "ssl_mode" }, "--option: 'ssl_mode' is not KEY=VALUE")]
    [InlineData(new[] { "--option", "a=1", "--option", "a=2" }, "--option: 'a' is given twice")]
    [InlineData(new[] { "--length", "long" }, "--length")]
    [InlineData(new[] { "--current-password-file", "/nonexistent/pw", "--current-password-stdin" }, "--current-password-file and --current-password-stdin: give one of the two")]
    [InlineData(new[] { "--current-password-file", "/nonexistent/pw" }, "cannot read the current password from '/nonexistent/pw'")]
    [InlineData(new[] { "--second-current-password-file", "/nonexistent/pw2" }, "cannot read the second current password from '/nonexistent/pw2'")]
    [InlineData(new[] { "--current-password", "hunter2" }, "--current-password")]
    public async Task Add_WithBadLocalInput_IsOneLineUsageErrorAndSendsNothing(string[] extra, string message)
    {
        var result = await Offline.RunAsync(AddArgs(extra));

        result.OneLineError(1, message);
    }

    [Fact]
    public async Task Add_WithPasswordOnTheCommandLine_IsRefusedWithoutEchoingIt()
    {
        var result = await Offline.RunAsync(AddArgs("--current-password", "hunter2-on-argv"));

        // There is no such option: a password typed as an argument is an unknown token, refused.
        result.OneLineError(1, "Unrecognized");
    }

    [Fact]
    public async Task Add_WithEmptyStandardInput_IsUsageError()
    {
        var result = await Offline.RunWithInputAsync("", AddArgs("--current-password-stdin"));

        result.OneLineError(1, "no current password given");
    }

    [Theory]
    [InlineData("--kind")]
    [InlineData("--host")]
    [InlineData("--account")]
    [InlineData("--admin-secret")]
    public async Task Add_WithoutARequiredOption_IsUsageError(string option)
    {
        var args = AddArgs().ToList();
        var at = args.IndexOf(option);
        args.RemoveRange(at, 2);

        var result = await Offline.RunAsync([.. args]);

        result.OneLineError(1, $"Option '{option}' is required");
    }

    [Fact]
    public async Task Credential_WithUnknownField_IsUsageError()
    {
        var result = await Offline.RunAsync("target", "credential", "billing-db", "--field", "token");

        result.OneLineError(1, "--field: 'token' is not username or password");
    }

    [Theory]
    [InlineData("show")]
    [InlineData("rotate")]
    [InlineData("history")]
    [InlineData("pause")]
    [InlineData("resume")]
    [InlineData("delete")]
    [InlineData("credential")]
    public async Task NameCommands_WithoutAName_AreUsageErrors(string command)
    {
        var result = await Offline.RunAsync("target", command);

        result.OneLineError(1, $"vaultctl target {command} --help");
    }

    [Fact]
    public async Task Help_ListsEveryTargetCommand()
    {
        var help = (await Offline.RunAsync("target", "--help")).Ok();

        foreach (var command in new[] { "add", "list", "show", "rotate", "history", "pause", "resume", "delete", "credential" })
        {
            Assert.Matches($@"(?m)^\s+{command}\b", help);
        }
    }

    [Fact]
    public async Task Add_WithUnknownKind_IsInvalidArgumentNamingTargetKind()
    {
        var name = CliVaultFixture.Unique("kind");
        var admin = await AdminSecretAsync(name);

        var result = await _ctl.RunWithInputAsync("pw\n", "target", "add", name, "--kind", "oracle", "--host", "127.0.0.1", "--account", "app",
            "--admin-secret", admin, "--current-password-stdin");

        var line = result.OneLineError(2, "vaultctl: InvalidArgument: target.kind: ");
        Assert.Contains("oracle", line, StringComparison.Ordinal);
        (await _ctl.RunAsync("target", "show", name)).OneLineError(2, "NotFound");
    }

    [Fact]
    public async Task Add_WithAPortAbove65535_IsInvalidArgumentNamingTheConnectionPort_FromTheServer()
    {
        // The range of a port is checked in one place, on the server: the CLI only parses the number.
        var name = CliVaultFixture.Unique("port");

        var result = await _ctl.RunAsync("target", "add", name, "--kind", "postgres", "--host", "127.0.0.1", "--port", "70000", "--skip-verify", "--account", "app",
            "--admin-secret", await AdminSecretAsync(name), "--rotate-now");

        result.OneLineError(2, "vaultctl: InvalidArgument: target.connection.port: must be between 0 (the default port) and 65535");
        (await _ctl.RunAsync("target", "show", name)).OneLineError(2, "NotFound");
    }

    [Fact]
    public async Task Add_NewTargetWithoutPasswordOrRotateNow_IsInvalidArgumentNamingCurrentPassword()
    {
        var name = CliVaultFixture.Unique("nopw");

        var result = await _ctl.RunAsync("target", "add", name, "--kind", "postgres", "--host", "127.0.0.1", "--port", ClosedPort, "--skip-verify", "--account", "app",
            "--admin-secret", await AdminSecretAsync(name));

        result.OneLineError(2, "vaultctl: InvalidArgument: current_password: ");
    }

    [Fact]
    public async Task AddShowListPauseResumeDelete_RoundTripsTheConfigurationAndStatus()
    {
        var name = CliVaultFixture.Unique("billing-db");
        var account = $"app_{Guid.NewGuid():N}";
        var password = $"onboard-{Guid.NewGuid():N}";
        var admin = await AdminSecretAsync(name);
        var passwordFile = Path.GetTempFileName();
        await File.WriteAllTextAsync(passwordFile, password + "\n");
        try
        {
            var added = (await _ctl.RunAsync("target", "add", name, "--kind", "postgres", "--host", "127.0.0.1", "--port", ClosedPort, "--skip-verify",
                "--database", "billing", "--option", "ssl_mode=disable", "--account", account, "--admin-secret", admin,
                "--interval", "24h", "--window", "01:00-05:00", "--max-jitter", "5m", "--length", "40", "--require", "lower,upper,digit,symbol",
                "--current-password-file", passwordFile, "--json")).Json();

            Assert.Equal(name, added.GetProperty("name").GetString());
            Assert.Equal("postgres", added.GetProperty("kind").GetString());
            var connection = added.GetProperty("connection");
            Assert.Equal("127.0.0.1", connection.GetProperty("host").GetString());
            Assert.Equal(1, connection.GetProperty("port").GetInt32());
            Assert.Equal("billing", connection.GetProperty("database").GetString());
            Assert.Equal("disable", connection.GetProperty("options").GetProperty("ssl_mode").GetString());
            Assert.Equal(account, added.GetProperty("account").GetString());
            Assert.False(added.TryGetProperty("second_account", out _));
            Assert.Equal(admin, added.GetProperty("admin_secret").GetString());
            Assert.Equal("single-user", added.GetProperty("strategy").GetString());
            var policy = added.GetProperty("password_policy");
            Assert.Equal(40, policy.GetProperty("length").GetInt32());
            Assert.True(policy.GetProperty("require_symbol").GetBoolean());
            var schedule = added.GetProperty("schedule");
            Assert.Equal(86400, schedule.GetProperty("interval_seconds").GetInt64());
            Assert.Equal("01:00", schedule.GetProperty("window_start").GetString());
            Assert.Equal("05:00", schedule.GetProperty("window_end").GetString());
            Assert.Equal(300, schedule.GetProperty("max_jitter_seconds").GetInt64());
            Assert.False(schedule.TryGetProperty("cron", out _));
            var status = added.GetProperty("status");
            Assert.Equal("ready", status.GetProperty("state").GetString());
            Assert.Equal(0UL, status.GetProperty("version").GetUInt64());
            Assert.False(status.GetProperty("paused").GetBoolean());
            Assert.False(status.GetProperty("drifted").GetBoolean());
            Assert.True(status.TryGetProperty("next_rotation_at", out _));

            var show = (await _ctl.RunAsync("target", "show", name)).Ok();
            Assert.Matches(@"(?m)^Host +127\.0\.0\.1:1$", show);
            Assert.Matches(@"(?m)^Schedule +every 1d$", show);
            Assert.Matches(@"(?m)^Window +01:00-05:00 UTC$", show);
            Assert.Matches(@"(?m)^Password Policy +40 characters: letters, digits, '-', '_'; requires lower, upper, digit, symbol$", show);
            Assert.Matches(@"(?m)^State +ready$", show);
            Assert.Matches(@"(?m)^Paused +no$", show);

            var listed = Assert.Single((await _ctl.RunAsync("target", "list", "--json")).Json().GetProperty("targets").EnumerateArray(),
                t => t.GetProperty("name").GetString() == name);
            Assert.Equal(account, listed.GetProperty("account").GetString());
            var table = (await _ctl.RunAsync("target", "list")).Ok().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Matches(@"^NAME +KIND +ACCOUNT +STATE +VERSION +LAST-ROTATED +NEXT-ROTATION +NOTES$", table[0]);
            var row = Row(table, name);
            Assert.True(System.Text.RegularExpressions.Regex.IsMatch(row, $@"^{name} +postgres +{account} +ready +0 +- +\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\dZ +tls unverified \(disable\)$"), row);

            (await _ctl.RunAsync("target", "pause", name)).Ok();
            var paused = (await _ctl.RunAsync("target", "show", name, "--json")).Json().GetProperty("status");
            Assert.True(paused.GetProperty("paused").GetBoolean());
            Assert.False(paused.TryGetProperty("next_rotation_at", out _));
            Assert.Matches($@"^{name} +postgres +{account} +ready +0 +- +- +paused, tls unverified \(disable\)$", Row((await _ctl.RunAsync("target", "list")).Ok().Split('\n'), name));
            (await _ctl.RunAsync("target", "rotate", name)).OneLineError(2, "vaultctl: FailedPrecondition: ");

            var resumed = (await _ctl.RunAsync("target", "resume", name, "--json")).Json().GetProperty("status");
            Assert.False(resumed.GetProperty("paused").GetBoolean());
            Assert.True(resumed.TryGetProperty("next_rotation_at", out _));

            foreach (var output in new[] { show, string.Join('\n', table), (await _ctl.RunAsync("target", "show", name, "--json")).Ok() })
            {
                Assert.DoesNotContain(password, output, StringComparison.Ordinal);
            }

            var deleted = (await _ctl.RunAsync("target", "delete", name, "--json")).Json();
            Assert.True(deleted.GetProperty("deleted").GetBoolean());
            (await _ctl.RunAsync("target", "show", name)).OneLineError(2, "vaultctl: NotFound: ");
            Assert.DoesNotContain(name, (await _ctl.RunAsync("target", "list")).Ok(), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(passwordFile);
        }
    }

    [Fact]
    public async Task Credential_AfterOnboardingFromStandardInput_GivesThePasswordToday()
    {
        var name = CliVaultFixture.Unique("cred");
        var password = $"today-{Guid.NewGuid():N}";
        (await _ctl.RunWithInputAsync(password + "\n", "target", "add", name, "--kind", "mysql", "--host", "127.0.0.1", "--port", ClosedPort, "--skip-verify",
            "--account", "app", "--admin-secret", await AdminSecretAsync(name), "--cron", "0 3 * * *", "--current-password-stdin")).Ok();

        var json = (await _ctl.RunAsync("target", "credential", name, "--json")).Json();
        var field = (await _ctl.RunAsync("target", "credential", name, "--field", "password")).Ok();
        var human = (await _ctl.RunAsync("target", "credential", name)).Ok();
        var shown = (await _ctl.RunAsync("target", "show", name, "--json")).Json();

        Assert.Equal("app", json.GetProperty("username").GetString());
        Assert.Equal(password, json.GetProperty("password").GetString());
        Assert.Equal(0UL, json.GetProperty("version").GetUInt64());
        Assert.Equal(password + "\n", field);
        Assert.Matches($@"(?m)^Password +{password}$", human);
        Assert.Equal("0 3 * * *", shown.GetProperty("schedule").GetProperty("cron").GetString());
    }

    [Fact]
    public async Task Rotate_WhenTheHostRefusesConnections_Exits2WithOneLineNamingTheStep()
    {
        var name = await AddUnreachableTargetAsync("unreachable");

        var human = await _ctl.RunAsync("target", "rotate", name);

        var line = human.OneLineError(2, $"vaultctl: rotation of {name} failed at set: ");
        Assert.Contains("127.0.0.1:1", line, StringComparison.Ordinal);
        var json = await _ctl.RunAsync("target", "rotate", name, "--json");
        Assert.Equal(2, json.ExitCode);
        Assert.StartsWith($"vaultctl: rotation of {name} failed at ", json.StdErr, StringComparison.Ordinal);
        using var document = System.Text.Json.JsonDocument.Parse(json.StdOut);
        var e = document.RootElement.GetProperty("event");
        Assert.Equal("failed", e.GetProperty("outcome").GetString());
        Assert.Equal("manual", e.GetProperty("trigger").GetString());
        Assert.Equal(name, document.RootElement.GetProperty("target").GetProperty("name").GetString());
        Assert.Matches($@"^{name} +postgres +app +\S+ +0 +- +\S+ \S+ +\d+ failures?$", Row((await _ctl.RunAsync("target", "list")).Ok().Split('\n'), name));
    }

    [Fact]
    public async Task History_AfterAFailedRotation_ShowsItNewestFirst()
    {
        var name = await AddUnreachableTargetAsync("history");
        (await _ctl.RunAsync("target", "rotate", name)).OneLineError(2, "failed at set");

        var json = (await _ctl.RunAsync("target", "history", name, "--json")).Json();
        var table = (await _ctl.RunAsync("target", "history", name, "--limit", "1")).Ok().Split('\n', StringSplitOptions.RemoveEmptyEntries);

        // Scheduled retries may add events after ours; the manual one is there, with its step.
        var manual = Assert.Single(json.GetProperty("events").EnumerateArray(), e => e.GetProperty("trigger").GetString() == "manual");
        Assert.Equal("failed", manual.GetProperty("outcome").GetString());
        Assert.Equal("set", manual.GetProperty("step").GetString());
        Assert.Equal("app", manual.GetProperty("account").GetString());
        Assert.Contains("127.0.0.1:1", manual.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Matches(@"^TIME +TRIGGER +OUTCOME +ACCOUNT +VERSION +STEP +REASON$", table[0]);
        Assert.Equal(3, table.Length);
        Assert.Matches(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ +\S+ +failed +app +0 +\S+ +\S", table[2]);

        // Nothing listens on the port, so the set was never sent: nothing is pending and a plain
        // delete works (issue 11, item 5; it used to need --force).
        (await _ctl.RunAsync("target", "delete", name)).Ok();
        (await _ctl.RunAsync("target", "history", name)).OneLineError(2, "vaultctl: NotFound: ");
    }

    [Fact]
    public async Task Add_WithAWrongAdminPasswordOrAMissingRole_FailsNamingWhich_AndSkipVerifyRegistersIt()
    {
        var role = await postgres.CreateLoginRoleAsync("Today-1234567", "cli");
        var badAdmin = $"cli-target/{CliVaultFixture.Unique("bad")}/admin";
        (await _ctl.RunAsync("kv", "put", badAdmin, $"username={postgres.SuperUser}", "password=not-the-password")).Ok();
        var goodAdmin = $"cli-target/{CliVaultFixture.Unique("good")}/admin";
        (await _ctl.RunAsync("kv", "put", goodAdmin, $"username={postgres.SuperUser}", $"password={postgres.SuperPassword}")).Ok();
        string[] Add(string name, string account, string admin, params string[] extra) =>
            ["target", "add", name, "--kind", "postgres", "--host", postgres.Host, "--port", postgres.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--database", postgres.Database, "--account", account, "--admin-secret", admin, "--current-password-stdin", .. extra];

        var wrongAdmin = CliVaultFixture.Unique("badadm");
        var refused = (await _ctl.RunWithInputAsync("Today-1234567\n", Add(wrongAdmin, role, badAdmin))).OneLineError(2, "vaultctl: InvalidArgument: target.admin_secret: ");
        Assert.DoesNotContain("not-the-password", refused, StringComparison.Ordinal);
        var noRole = CliVaultFixture.Unique("norole");
        (await _ctl.RunWithInputAsync("Today-1234567\n", Add(noRole, $"missing_{Guid.NewGuid():N}"[..20], goodAdmin))).OneLineError(2, "vaultctl: InvalidArgument: target.account: ");
        (await _ctl.RunAsync("target", "show", wrongAdmin)).OneLineError(2, "vaultctl: NotFound: ");

        (await _ctl.RunWithInputAsync("Today-1234567\n", Add(wrongAdmin, role, badAdmin, "--skip-verify"))).Ok();
        (await _ctl.RunWithInputAsync("Today-1234567\n", Add(noRole, $"missing_{Guid.NewGuid():N}"[..20], goodAdmin, "--skip-verify"))).Ok();
        (await _ctl.RunAsync("target", "show", wrongAdmin)).Ok();
    }

    [Fact]
    public async Task Rotate_AgainstRealPostgres_CredentialLogsInAndHistoryShowsSucceeded()
    {
        var name = CliVaultFixture.Unique("pg");
        var original = $"orig-{Guid.NewGuid():N}";
        var role = await postgres.CreateLoginRoleAsync(original, "cli");
        var admin = $"cli-target/{name}/admin";
        (await _ctl.RunAsync("kv", "put", admin, $"username={postgres.SuperUser}", $"password={postgres.SuperPassword}")).Ok();
        (await _ctl.RunWithInputAsync(original + "\n", "target", "add", name, "--kind", "postgres", "--host", postgres.Host,
            "--port", postgres.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--database", postgres.Database,
            "--account", role, "--admin-secret", admin, "--interval", "24h", "--current-password-stdin")).Ok();

        var rotated = (await _ctl.RunAsync("target", "rotate", name)).Ok();
        var credential = (await _ctl.RunAsync("target", "credential", name, "--json")).Json();
        var history = (await _ctl.RunAsync("target", "history", name, "--json")).Json();

        Assert.Matches(@"(?m)^Outcome +succeeded$", rotated);
        Assert.Matches(@"(?m)^Version +1$", rotated);
        var password = credential.GetProperty("password").GetString()!;
        Assert.Equal(role, credential.GetProperty("username").GetString());
        Assert.Equal(1UL, credential.GetProperty("version").GetUInt64());
        Assert.NotEqual(original, password);
        Assert.True(await postgres.CanLoginAsync(role, password), "the credential vaultctl printed does not log in");
        Assert.False(await postgres.CanLoginAsync(role, original), "the old password still logs in");
        var newest = history.GetProperty("events").EnumerateArray().First();
        Assert.Equal("succeeded", newest.GetProperty("outcome").GetString());
        Assert.Equal("manual", newest.GetProperty("trigger").GetString());
        Assert.Equal(1UL, newest.GetProperty("version").GetUInt64());
        Assert.Equal(role, newest.GetProperty("account").GetString());
        Assert.DoesNotContain(password, rotated, StringComparison.Ordinal);
    }

    /// <summary>A KV admin credential for a target (PutTarget reads it, so it must exist).</summary>
    private async Task<string> AdminSecretAsync(string name)
    {
        var path = $"cli-target/{name}/admin";
        (await _ctl.RunAsync("kv", "put", path, "username=vault_admin", "password=admin-not-used")).Ok();
        return path;
    }

    private async Task<string> AddUnreachableTargetAsync(string prefix)
    {
        var name = CliVaultFixture.Unique(prefix);
        (await _ctl.RunWithInputAsync("today\n", "target", "add", name, "--kind", "postgres", "--host", "127.0.0.1", "--port", ClosedPort, "--skip-verify",
            "--account", "app", "--admin-secret", await AdminSecretAsync(name), "--interval", "24h", "--current-password-stdin")).Ok();
        return name;
    }

    private static string Row(IEnumerable<string> lines, string name) =>
        Assert.Single(lines, l => l.StartsWith(name + " ", StringComparison.Ordinal));
}
