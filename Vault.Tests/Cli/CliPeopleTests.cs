using System.Text.Json;
using Vault.Tests.Infrastructure;

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
        (await new VaultCtl(fixture.Vault.Address).RunWithInputAsync("x\n", "login", "--method", "github", "--username", name)).OneLineError(1, "--method");
        (await _ctl.RunAsync("identity", "group", "write", name, "--member", "no-such-entity")).OneLineError(2, "group.members[0]");
        (await _ctl.RunAsync("userpass", "read", name)).OneLineError(2, "NotFound");
    }

    [Fact]
    public async Task Mfa_EnrolValidateAndLoginWithACode_ThenAnAdminReset()
    {
        var name = CliVaultFixture.Unique("frank");
        (await _ctl.RunWithInputAsync(Password + "\n", "userpass", "write", name)).Ok();
        var person = Person(out _);
        (await person.RunWithInputAsync(Password + "\n", "login", "--username", name)).Ok();

        var enrolled = (await person.RunAsync("mfa", "enroll", "--json")).Json();
        var uri = enrolled.GetProperty("otpauth_uri").GetString()!;
        Assert.Equal(10, enrolled.GetProperty("recovery_codes").GetArrayLength());
        var human = (await _ctl.RunAsync("mfa", "status", name)).Ok();
        Assert.Matches(@"Enrolled\s+pending", human);
        var secret = Otp.SecretOf(uri);
        (await person.RunWithInputAsync(Code(secret, 0) + "\n", "mfa", "validate")).Ok();

        (await person.RunWithInputAsync(Password + "\n", "login", "--username", name, "--no-store")).OneLineError(1, "an MFA code is required");
        var login = (await person.RunWithInputAsync($"{Password}\n{Code(secret, 1)}\n", "login", "--username", name, "--json")).Json();
        Assert.NotEqual(JsonValueKind.Null, login.GetProperty("token").ValueKind);
        var status = (await _ctl.RunAsync("mfa", "status", name, "--json")).Json();
        Assert.True(status.GetProperty("enrolled").GetBoolean());
        Assert.Equal(10, status.GetProperty("recovery_codes_left").GetInt32());

        (await _ctl.RunAsync("mfa", "reset", name)).Ok();
        (await person.RunWithInputAsync(Password + "\n", "login", "--username", name)).Ok();
        // For a person at a terminal: the URI as a QR code in block characters, and the codes.
        var shown = (await person.RunAsync("mfa", "enroll")).Ok();
        Assert.Contains('█', shown);
        Assert.Matches(@"OTP URI\s+otpauth://totp/Vault%3A", shown);
        Assert.Matches(@"Recovery Codes\s+(\S{4}-\S{4}-\S{4} ){9}\S{4}-\S{4}-\S{4}", shown);
    }

    /// <summary>The README's walk-through "One hour of production access, approved by two colleagues", as commands.</summary>
    [Fact]
    public async Task OneHourOfProductionAccess_ApprovedByTwoColleagues()
    {
        var tag = Guid.NewGuid().ToString("N")[..8];
        string Named(string name) => $"{name}-{tag}";
        (await _ctl.RunAsync("kv", "put", $"{Named("prod")}/billing-db", "password=production-secret")).Ok();
        (await _ctl.RunWithInputAsync($$"""{"rules":[{"path":"kv/{{Named("prod")}}/*","capabilities":["read"]}]}""", "policy", "write", Named("prod-read"), "-")).Ok();
        (await _ctl.RunWithInputAsync($$"""{"rules":[{"path":"access/grant/{{Named("prod-db")}}/request","capabilities":["create"]}]}""", "policy", "write", Named("engineers"), "-")).Ok();
        foreach (var person in new[] { "dave", "ann", "ben", "cat" })
        {
            (await _ctl.RunWithInputAsync(Password + "\n", "userpass", "write", Named(person))).Ok();
        }
        (await _ctl.RunAsync("identity", "entity", "write", Named("dave"), "--policy", Named("engineers"))).Ok();
        (await _ctl.RunAsync("identity", "group", "write", Named("prod-approvers"), "--member", Named("ann"), "--member", Named("ben"), "--member", Named("cat"))).Ok();
        var grant = (await _ctl.RunAsync("grant", "write", Named("prod-db"), "--policy", Named("prod-read"), "--max-duration", "1h", "--approvers", Named("prod-approvers"), "--approvals", "2", "--json")).Json();
        Assert.Equal(2, grant.GetProperty("approvals_required").GetInt32());

        var dave = Person(out _);
        (await dave.RunWithInputAsync(Password + "\n", "login", "--username", Named("dave"))).Ok();
        var id = (await dave.RunAsync("request", "create", Named("prod-db"), "--reason", "INC-4242 billing is down", "--duration", "1h", "--json")).Json().GetProperty("id").GetString()!;
        (await dave.RunAsync("kv", "get", $"{Named("prod")}/billing-db")).OneLineError(2, "PermissionDenied");
        (await dave.RunAsync("request", "approve", id)).OneLineError(2, "own request");

        foreach (var approver in new[] { "ann", "ben" })
        {
            var colleague = Person(out _);
            (await colleague.RunWithInputAsync(Password + "\n", "login", "--username", Named(approver))).Ok();
            (await colleague.RunAsync("request", "approve", id, "--comment", "checked the incident")).Ok();
        }

        Assert.Equal("production-secret", (await dave.RunAsync("kv", "get", $"{Named("prod")}/billing-db", "--field", "password")).Ok().Trim());
        var shown = (await dave.RunAsync("request", "show", id)).Ok();
        Assert.Matches($@"State\s+active", shown);
        Assert.Matches($@"Approvals\s+2 of 2: {Named("ann")}, {Named("ben")}", shown);
        (await dave.RunAsync("request", "revoke", id, "--comment", "fixed")).Ok();
        (await dave.RunAsync("kv", "get", $"{Named("prod")}/billing-db")).OneLineError(2, "PermissionDenied");
    }

    [Fact]
    public async Task LdapConfig_ThenLoginWithTheDirectoryPassword_OverVerifiedTls()
    {
        using var ca = new TestCertificates();
        await using var directory = await LdapServer.StartWithTlsAsync(ca.IssueServer());
        var dn = await directory.CreateUserAsync("directory-password", "gina");
        var uid = dn.Split(',')[0]["uid=".Length..];
        var caFile = Path.GetTempFileName();
        await File.WriteAllTextAsync(caFile, ca.CaPem);
        try
        {
            (await _ctl.RunAsync("ldap", "config", "--url", directory.Uri.TrimEnd('/'), "--ca-cert", caFile, "--user-dn", $"uid={{{{username}}}},{directory.PeopleDn}", "--group-base", directory.GroupsDn)).Ok();
            var person = Person(out _);

            var login = (await person.RunWithInputAsync("directory-password\n", "login", "--method", "ldap", "--username", uid, "--json")).Json();

            Assert.Equal(uid, login.GetProperty("entity").GetString());
            Assert.Equal($"ldap-{uid}", (await person.RunAsync("token", "lookup", "--json")).Json().GetProperty("display_name").GetString());
            (await person.RunWithInputAsync("wrong\n", "login", "--method", "ldap", "--username", uid)).OneLineError(2, "Unauthenticated");
            (await _ctl.RunAsync("ldap", "config", "--url", "ldap://127.0.0.1:389", "--ca-cert", caFile, "--user-dn", "uid=x", "--group-base", "dc=x")).OneLineError(2, "config.user_dn_template");
        }
        finally
        {
            File.Delete(caFile);
        }
    }

    private static string Code(byte[] secret, int stepsFromNow) => Otp.Code(secret, DateTimeOffset.UtcNow, stepsFromNow);

}
