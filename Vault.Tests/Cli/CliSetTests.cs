using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Vault.Tests.Cli;

/// <summary>
/// <c>vaultctl set ...</c> (check-out sets) and <c>vaultctl lease checkout --set</c>: local validation
/// (nothing sent), and borrowing a real PostgreSQL account whose password dies at check-in.
/// </summary>
/// <remarks>
/// Each lent account is a fresh login role on the run's PostgreSQL, registered as a target with no
/// schedule and the superuser as its admin credential, in a set of its own.
/// </remarks>
[Collection("postgres")]
public sealed class CliSetTests(CliVaultFixture fixture, PostgresServer postgres) : IClassFixture<CliVaultFixture>
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
    [InlineData(new[] { "set", "write", "pool" }, "Option '--target' is required")]
    [InlineData(new[] { "set", "write", "pool", "--target", "pg-a", "--target", "pg-a" }, "--target: 'pg-a' is given twice")]
    [InlineData(new[] { "set", "write", "pool", "--target", "pg-a", "--target", " " }, "--target: the target name is empty")]
    [InlineData(new[] { "set", "write", "pool", "--target", "pg-a", "--default-ttl", "1 hour" }, "--default-ttl: '1 hour' is not a duration")]
    [InlineData(new[] { "set", "write", "pool", "--target", "pg-a", "--max-ttl", "forever" }, "--max-ttl: 'forever' is not a duration")]
    [InlineData(new[] { "set", "write", "pool", "--target", "pg-a", "--default-ttl", "2d", "--max-ttl", "24h" }, "--default-ttl 2d is longer than --max-ttl 1d")]
    [InlineData(new[] { "set", "write" }, "vaultctl set write --help")]
    [InlineData(new[] { "set", "read" }, "vaultctl set read --help")]
    [InlineData(new[] { "set", "delete" }, "vaultctl set delete --help")]
    [InlineData(new[] { "set", "list", "extra" }, "Unrecognized")]
    [InlineData(new[] { "lease", "checkout", "reports", "--set", "pool" }, "a role and --set: give one of the two")]
    [InlineData(new[] { "lease", "checkout" }, "give a dynamic role, or --set to borrow an account of a check-out set")]
    [InlineData(new[] { "lease", "checkout", "--ttl", "15m" }, "give a dynamic role, or --set")]
    [InlineData(new[] { "lease", "checkout", "reports", "--wait", "30s" }, "--wait applies only to --set")]
    [InlineData(new[] { "lease", "checkout", "--set", "pool", "--wait", "soon" }, "--wait: 'soon' is not a duration (use e.g. 90s, 30m, 1h30m, 7d)")]
    [InlineData(new[] { "lease", "checkout", "--set", "pool", "--wait", "0" }, "--wait: '0' is not a duration")]
    [InlineData(new[] { "lease", "checkout", "--set", "pool", "--ttl", "-15m" }, "--ttl: '-15m' is not a duration")]
    public async Task BadLocalInput_IsOneLineUsageErrorAndSendsNothing(string[] args, string message)
    {
        var result = await Offline.RunAsync(args);

        result.OneLineError(1, message);
    }

    [Theory]
    [InlineData("set", "write", "pool", "--target", "pg-a", "--target", "pg-b", "--default-ttl", "1h", "--max-ttl", "1h")]
    [InlineData("set", "list")]
    [InlineData("lease", "checkout", "--set", "pool", "--ttl", "15m", "--wait", "30s")]
    public async Task ValidInput_GoesToTheServer(params string[] args)
    {
        // The counterpart of the tests above: well-formed input is sent, so the run fails to connect.
        var result = await Offline.RunAsync(args);

        result.OneLineError(3, "vaultctl: cannot connect to http://127.0.0.1:1: ");
    }

    [Fact]
    public async Task Help_ListsEverySetCommand_AndTheRootListsSet()
    {
        var help = (await Offline.RunAsync("set", "--help")).Ok();

        foreach (var command in new[] { "write", "read", "list", "delete" })
        {
            Assert.Matches($@"(?m)^\s+{command}\b", help);
        }
        Assert.Matches(@"(?m)^\s+set\b", (await Offline.RunAsync("--help")).Ok());
        Assert.Contains("--set", (await Offline.RunAsync("lease", "checkout", "--help")).Ok(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SetWrite_WithUnknownTarget_IsInvalidArgumentNamingTheTarget()
    {
        var name = CliVaultFixture.Unique("pool");
        var target = CliVaultFixture.Unique("no-such-target");

        var result = await _ctl.RunAsync("set", "write", name, "--target", target);

        var line = result.OneLineError(2, "vaultctl: InvalidArgument: set.targets[0]: ");
        Assert.Contains(target, line, StringComparison.Ordinal);
        (await _ctl.RunAsync("set", "read", name)).OneLineError(2, "vaultctl: NotFound: ");
    }

    [Fact]
    public async Task SetWrite_WithAScheduledTarget_IsInvalidArgument_ACheckInRotatesIt()
    {
        // A scheduled rotation would change the password under its holder.
        var target = await ClosedPortTargetAsync("scheduled", "--interval", "24h");

        var result = await _ctl.RunAsync("set", "write", CliVaultFixture.Unique("pool"), "--target", target);

        var line = result.OneLineError(2, "vaultctl: InvalidArgument: set.targets[0]: ");
        Assert.Contains("schedule", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SetWriteReadListDelete_RoundTripsTheTargetsAndTtls()
    {
        var first = await ClosedPortTargetAsync("pool-a");
        var second = await ClosedPortTargetAsync("pool-b");
        var name = CliVaultFixture.Unique("pool");

        var written = (await _ctl.RunAsync("set", "write", name, "--target", first, "--target", second, "--default-ttl", "15m", "--max-ttl", "2h", "--json")).Json();

        Assert.Equal(name, written.GetProperty("name").GetString());
        Assert.Equal([first, second], Strings(written.GetProperty("targets")));
        Assert.Equal(900, written.GetProperty("default_ttl_seconds").GetInt64());
        Assert.Equal(7200, written.GetProperty("max_ttl_seconds").GetInt64());
        Assert.Empty(written.GetProperty("lent").EnumerateArray());

        var read = (await _ctl.RunAsync("set", "read", name)).Ok();
        Assert.Matches($@"(?m)^Name +{Regex.Escape(name)}$", read);
        Assert.Matches(@"(?m)^Default TTL +15m$", read);
        Assert.Matches(@"(?m)^Max TTL +2h$", read);
        Assert.Matches(@"(?m)^Lent +0 of 2$", read);
        Assert.Matches($@"(?m)^Target 1 +{Regex.Escape(first)} \(free\)$", read);
        Assert.Matches($@"(?m)^Target 2 +{Regex.Escape(second)} \(free\)$", read);
        Assert.Contains(name, Strings((await _ctl.RunAsync("set", "list", "--json")).Json().GetProperty("names")));
        Assert.Contains(name, (await _ctl.RunAsync("set", "list")).Ok().Split('\n'));

        // Written again without TTLs: the server's defaults, and the targets replaced.
        var defaults = (await _ctl.RunAsync("set", "write", name, "--target", second, "--json")).Json();
        Assert.Equal([second], Strings(defaults.GetProperty("targets")));
        Assert.Equal(3600, defaults.GetProperty("default_ttl_seconds").GetInt64());
        Assert.Equal(86400, defaults.GetProperty("max_ttl_seconds").GetInt64());

        Assert.Equal($"Set '{name}' deleted\n", (await _ctl.RunAsync("set", "delete", name)).Ok());
        (await _ctl.RunAsync("set", "read", name)).OneLineError(2, "vaultctl: NotFound: ");
        (await _ctl.RunAsync("lease", "checkout", "--set", name)).OneLineError(2, "vaultctl: NotFound: ");
    }

    [Fact]
    public async Task CheckoutSetAndCheckIn_AgainstRealPostgres_OneHolderAtATime_AndTheHoldersPasswordDiesAtCheckIn()
    {
        var (set, target, account) = await PostgresSetAsync("borrow");

        var issued = (await _ctl.RunAsync("lease", "checkout", "--set", set, "--ttl", "10m", "--json")).Json();
        var lease = issued.GetProperty("lease");
        var leaseId = lease.GetProperty("id").GetString()!;
        var password = issued.GetProperty("password").GetString()!;

        Assert.Matches($@"^checkout/{Regex.Escape(set)}/[0-9a-f]+$", leaseId);
        Assert.Equal(account, issued.GetProperty("username").GetString());
        Assert.Equal(set, lease.GetProperty("role").GetString());
        Assert.Equal(target, lease.GetProperty("target").GetString());
        Assert.Equal("active", lease.GetProperty("state").GetString());
        Assert.True(await postgres.CanLoginAsync(account, password), "the password lease checkout --set printed does not log in");

        // The only account is lent: a second borrower is refused at once, and after a short wait.
        (await _ctl.RunAsync("lease", "checkout", "--set", set)).OneLineError(2, $"vaultctl: ResourceExhausted: every account of check-out set '{set}' is lent");
        (await _ctl.RunAsync("lease", "checkout", "--set", set, "--wait", "1s", "--json")).OneLineError(2, "vaultctl: ResourceExhausted: ");

        var read = (await _ctl.RunAsync("set", "read", set)).Ok();
        Assert.Matches(@"(?m)^Lent +1 of 1$", read);
        Assert.Matches($@"(?m)^Target 1 +{Regex.Escape(target)} \(lent\)$", read);
        Assert.Equal([target], Strings((await _ctl.RunAsync("set", "read", set, "--json")).Json().GetProperty("lent")));
        Assert.DoesNotContain(password, read, StringComparison.Ordinal);
        (await _ctl.RunAsync("set", "delete", set)).OneLineError(2, "vaultctl: FailedPrecondition: ");
        Assert.Matches($@"(?m)^{Regex.Escape(leaseId)} +{Regex.Escape(set)} +{account} +active ", (await _ctl.RunAsync("lease", "list", $"checkout/{set}/")).Ok());

        var checkedIn = (await _ctl.RunAsync("lease", "revoke", leaseId)).Ok();

        Assert.Equal($"Lease '{leaseId}' revoked; account {account} checked in: its password was rotated and it is back in set '{set}'\n", checkedIn);
        Assert.False(await postgres.CanLoginAsync(account, password), "the first holder's password still logs in after check-in");
        Assert.Matches(@"(?m)^Lent +0 of 1$", (await _ctl.RunAsync("set", "read", set)).Ok());

        // Without --json: the fields a person reads, and the password is the account's new one.
        var next = (await _ctl.RunAsync("lease", "checkout", "--set", set)).Ok();
        Assert.Matches($@"(?m)^Set +{Regex.Escape(set)}$", next);
        Assert.Matches($@"(?m)^Target +{Regex.Escape(target)}$", next);
        Assert.Equal(account, Field(next, "Username"));
        var nextPassword = Field(next, "Password");
        Assert.NotEqual(password, nextPassword);
        Assert.True(await postgres.CanLoginAsync(account, nextPassword), "the second holder's password does not log in");

        var json = (await _ctl.RunAsync("lease", "revoke", Field(next, "Lease ID"), "--json")).Json();
        Assert.Equal("revoked", json.GetProperty("state").GetString());
        Assert.False(await postgres.CanLoginAsync(account, nextPassword), "the second holder's password still logs in after check-in");
        Assert.True((await _ctl.RunAsync("set", "delete", set, "--json")).Json().GetProperty("deleted").GetBoolean());
    }

    [Fact]
    public async Task CheckoutSetWithWait_IsServedWhenTheHolderChecksIn()
    {
        var (set, _, account) = await PostgresSetAsync("wait");
        var holder = (await _ctl.RunAsync("lease", "checkout", "--set", set, "--json")).Json();

        var waiter = _ctl.RunAsync("lease", "checkout", "--set", set, "--wait", "45s", "--json");
        await Task.Delay(TimeSpan.FromSeconds(3));
        if (waiter.IsCompleted)
        {
            throw new Xunit.Sdk.XunitException($"lease checkout --wait did not wait: {(await waiter).StdErr}");
        }
        (await _ctl.RunAsync("lease", "revoke", holder.GetProperty("lease").GetProperty("id").GetString()!)).Ok();

        var served = (await waiter.WaitAsync(TimeSpan.FromSeconds(30))).Json();
        var password = served.GetProperty("password").GetString()!;
        Assert.NotEqual(holder.GetProperty("password").GetString(), password);
        Assert.True(await postgres.CanLoginAsync(account, password), "the waiter's password does not log in");
        (await _ctl.RunAsync("lease", "revoke", served.GetProperty("lease").GetProperty("id").GetString()!)).Ok();
    }

    /// <summary>
    /// A set of one account: a fresh login role on the run's PostgreSQL, registered with its current
    /// password, no schedule (each check-in rotates it) and the superuser as its admin credential.
    /// </summary>
    private async Task<(string Set, string Target, string Account)> PostgresSetAsync(string prefix)
    {
        var target = CliVaultFixture.Unique($"{prefix}-pg");
        var admin = $"cli-set/{target}/admin";
        (await _ctl.RunAsync("kv", "put", admin, $"username={postgres.SuperUser}", $"password={postgres.SuperPassword}")).Ok();
        var accountPassword = $"acct-{Guid.NewGuid():N}";
        var account = await postgres.CreateLoginRoleAsync(accountPassword, "cliset");
        (await _ctl.RunWithInputAsync(accountPassword + "\n", "target", "add", target, "--kind", "postgres", "--host", postgres.Host,
            "--port", postgres.Port.ToString(CultureInfo.InvariantCulture), "--database", postgres.Database,
            "--account", account, "--admin-secret", admin, "--current-password-stdin")).Ok();
        var set = CliVaultFixture.Unique(prefix);
        (await _ctl.RunAsync("set", "write", set, "--target", target, "--default-ttl", "15m", "--max-ttl", "1h")).Ok();
        return (set, target, account);
    }

    /// <summary>A target on a closed port: enough for writing sets, which needs no database.</summary>
    private async Task<string> ClosedPortTargetAsync(string prefix, params string[] extra)
    {
        var name = CliVaultFixture.Unique(prefix);
        var admin = $"cli-set/{name}/admin";
        (await _ctl.RunAsync("kv", "put", admin, "username=vault_admin", "password=admin-not-used")).Ok();
        (await _ctl.RunWithInputAsync("today\n", ["target", "add", name, "--kind", "postgres", "--host", "127.0.0.1", "--port", ClosedPort, "--skip-verify",
            "--account", $"app_{Guid.NewGuid():N}", "--admin-secret", admin, "--current-password-stdin", .. extra])).Ok();
        return name;
    }

    private static List<string?> Strings(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetString())];

    private static string Field(string output, string label) =>
        Regex.Match(output, $@"(?m)^{label} +(\S+)$") is { Success: true } match ? match.Groups[1].Value : throw new Xunit.Sdk.XunitException($"no {label} line in:\n{output}");
}
