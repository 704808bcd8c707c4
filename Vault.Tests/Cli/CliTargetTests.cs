namespace Vault.Tests.Cli;

/// <summary><c>vaultctl target ...</c>: local validation (nothing sent) and round trips against a real server.</summary>
public sealed class CliTargetTests
{
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
    [InlineData(new[] { "--port", "70000" }, "--port: 70000 is not a TCP port")]
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
}
