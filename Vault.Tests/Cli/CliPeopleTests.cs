namespace Vault.Tests.Cli;

/// <summary>
/// People at the command line: an admin writes users, entities and groups; a person logs in with
/// a password read without an argument, and the token is stored in ~/.vault-token (0600), which
/// later commands use when no other token is given.
/// </summary>
public sealed class CliPeopleTests(CliVaultFixture fixture) : IClassFixture<CliVaultFixture>
{
    private const string Password = "alice's long password";

    private readonly VaultCtl _ctl = fixture.Ctl();

    /// <summary>vaultctl for a person: no token, and a home of their own where login stores one.</summary>
    private VaultCtl Person(out string home)
    {
        home = Directory.CreateTempSubdirectory("vaultctl-home-").FullName;
        var ctl = new VaultCtl(fixture.Vault.Address);
        ctl.Environment["HOME"] = home;
        return ctl;
    }

    [Fact]
    public async Task AGroupsPolicy_ReachesAPersonWhoLogsIn_AndTheStoredTokenIsUsedByLaterCommands()
    {
        var name = CliVaultFixture.Unique("alice");
        var group = CliVaultFixture.Unique("team");
        (await _ctl.RunWithInputAsync($$"""{"rules":[{"path":"kv/{{group}}/*","capabilities":["read"]}]}""", "policy", "write", group, "-")).Ok();
        (await _ctl.RunAsync("kv", "put", $"{group}/db", "password=for-the-team")).Ok();
        var user = (await _ctl.RunWithInputAsync(Password + "\n", "userpass", "write", name, "--json")).Json();
        Assert.Equal(name, user.GetProperty("entity").GetString());
        var written = (await _ctl.RunAsync("identity", "group", "write", group, "--policy", group, "--member", name, "--json")).Json();
        Assert.Equal([name], written.GetProperty("members").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal([group], (await _ctl.RunAsync("identity", "entity", "read", name, "--json")).Json().GetProperty("groups").EnumerateArray().Select(g => g.GetString()));

        var person = Person(out var home);
        var login = await person.RunWithInputAsync(Password + "\n", "login", "--username", name, "--json");

        var token = login.Json().GetProperty("token").GetString()!;
        Assert.Equal(name, login.Json().GetProperty("entity").GetString());
        var file = Path.Combine(home, ".vault-token");
        Assert.Equal(token, File.ReadAllText(file));
        UnixFileMode? mode = OperatingSystem.IsWindows() ? null : File.GetUnixFileMode(file);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, mode);
        Assert.Equal("for-the-team", (await person.RunAsync("kv", "get", $"{group}/db", "--field", "password")).Ok().Trim());
        Assert.DoesNotContain(Password, login.StdOut + login.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AWrongPassword_IsOneLineUnauthenticated_AndStoresNothing()
    {
        var name = CliVaultFixture.Unique("bob");
        (await _ctl.RunWithInputAsync(Password + "\n", "userpass", "write", name)).Ok();
        var person = Person(out var home);

        (await person.RunWithInputAsync("not it\n", "login", "--username", name)).OneLineError(2, "Unauthenticated");

        Assert.False(File.Exists(Path.Combine(home, ".vault-token")));
        Assert.Equal(1, (await _ctl.RunAsync("userpass", "read", name, "--json")).Json().GetProperty("failed_logins").GetInt32());
    }

    [Fact]
    public async Task ALockedOutUser_IsShownLocked_AndUnlockLetsThemIn()
    {
        var name = CliVaultFixture.Unique("carol");
        (await _ctl.RunWithInputAsync(Password + "\n", "userpass", "write", name)).Ok();
        var person = Person(out _);
        for (var i = 0; i < 5; i++)
        {
            (await person.RunWithInputAsync($"wrong {i}\n", "login", "--username", name, "--no-store")).OneLineError(2, "Unauthenticated");
        }
        (await person.RunWithInputAsync(Password + "\n", "login", "--username", name, "--no-store")).OneLineError(2, "Unauthenticated");
        var shown = (await _ctl.RunAsync("userpass", "read", name)).Ok();
        Assert.Matches(@"Locked Until\s+\d{4}-", shown);

        (await _ctl.RunAsync("userpass", "unlock", name)).Ok();

        (await person.RunWithInputAsync(Password + "\n", "login", "--username", name, "--no-store")).Ok();
    }

    [Fact]
    public async Task ChangePassword_ReadsTheCurrentAndTheNewFromStandardInput()
    {
        var name = CliVaultFixture.Unique("dave");
        (await _ctl.RunWithInputAsync(Password + "\n", "userpass", "write", name)).Ok();
        var person = Person(out _);

        (await person.RunWithInputAsync($"{Password}\nthe new long password\n", "userpass", "change-password", name)).Ok();

        (await person.RunWithInputAsync(Password + "\n", "login", "--username", name, "--no-store")).OneLineError(2, "Unauthenticated");
        (await person.RunWithInputAsync("the new long password\n", "login", "--username", name, "--no-store")).Ok();
    }

    [Fact]
    public async Task BadInput_IsAOneLineErrorNamingWhatIsWrong()
    {
        var name = CliVaultFixture.Unique("erin");
        (await _ctl.RunAsync("userpass", "write", name)).OneLineError(2, "password: is required for a new user");
        (await _ctl.RunWithInputAsync("short\n", "userpass", "write", name)).OneLineError(2, "password: must be 8 to 1024 characters");
        (await new VaultCtl(fixture.Vault.Address).RunAsync("login", "--username", name)).OneLineError(1, "no password given");
        (await new VaultCtl(fixture.Vault.Address).RunWithInputAsync("x\n", "login", "--method", "ldap", "--username", name)).OneLineError(1, "--method");
        (await _ctl.RunAsync("identity", "group", "write", name, "--member", "no-such-entity")).OneLineError(2, "group.members[0]");
        (await _ctl.RunAsync("userpass", "read", name)).OneLineError(2, "NotFound");
    }
}
