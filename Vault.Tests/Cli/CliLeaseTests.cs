namespace Vault.Tests.Cli;

/// <summary><c>vaultctl role ...</c> (dynamic database roles) and <c>vaultctl lease ...</c>: local validation (nothing sent).</summary>
public sealed class CliLeaseTests
{
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
    [InlineData(new[] { "lease", "revoke", "--prefix", "" }, "--prefix: the prefix is empty (every lease id starts with 'dynamic/')")]
    [InlineData(new[] { "role", "write", "reports", "--target", "pg", "--statement", "" }, "--statement: the statement is empty")]
    [InlineData(new[] { "role", "write", "reports", "--target", "pg", "--statement", "GRANT CONNECT ON DATABASE app TO {{name}}", "--statement", "  " }, "--statement 2 of 2: the statement is empty")]
    [InlineData(new[] { "role", "write", "reports", "--target", "pg", "--statement-file", "/nonexistent/grants.sql" }, "cannot read statements from '/nonexistent/grants.sql'")]
    [InlineData(new[] { "role", "write", "reports", "--target", "pg", "--default-ttl", "1 hour" }, "--default-ttl: '1 hour' is not a duration")]
    [InlineData(new[] { "role", "write", "reports", "--target", "pg", "--max-ttl", "forever" }, "--max-ttl: 'forever' is not a duration")]
    [InlineData(new[] { "role", "write", "reports", "--target", "pg", "--default-ttl", "2d", "--max-ttl", "24h" }, "--default-ttl 2d is longer than --max-ttl 1d")]
    [InlineData(new[] { "role", "write", "reports" }, "Option '--target' is required")]
    [InlineData(new[] { "lease", "checkout" }, "vaultctl lease checkout --help")]
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
}
