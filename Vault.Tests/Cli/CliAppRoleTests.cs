namespace Vault.Tests.Cli;

public sealed class CliAppRoleTests(CliVaultFixture fixture) : IClassFixture<CliVaultFixture>
{
    private readonly VaultCtl _ctl = fixture.Ctl();

    [Fact]
    public async Task WriteRoleIdSecretIdLogin_Json_GivesATokenWithTheRolesPolicy()
    {
        var name = CliVaultFixture.Unique("svc");
        (await _ctl.RunWithInputAsync($$"""{"rules":[{"path":"kv/{{name}}/*","capabilities":["read"]}]}""", "policy", "write", name, "-")).Ok();
        (await _ctl.RunAsync("kv", "put", $"{name}/db", "password=cli-approle")).Ok();

        var role = (await _ctl.RunAsync("approle", "write", name, "--policy", name, "--token-ttl", "30m", "--secret-id-uses", "2", "--json")).Json();
        Assert.Equal(1800, role.GetProperty("token_ttl_seconds").GetInt64());
        var roleId = (await _ctl.RunAsync("approle", "role-id", name, "--json")).Json().GetProperty("role_id").GetString()!;
        var secretId = (await _ctl.RunAsync("approle", "secret-id", name, "--json")).Json().GetProperty("secret_id").GetString()!;
        Assert.Contains(name, (await _ctl.RunAsync("approle", "list", "--json")).Json().GetProperty("names").EnumerateArray().Select(n => n.GetString()));

        var anonymous = new VaultCtl(fixture.Vault.Address);
        var login = await anonymous.RunWithInputAsync(secretId + "\n", "approle", "login", roleId, "--json");
        var token = login.Json().GetProperty("token").GetString()!;
        Assert.DoesNotContain(secretId, login.StdOut, StringComparison.Ordinal);
        var app = new VaultCtl(fixture.Vault.Address, token);
        Assert.Equal("cli-approle", (await app.RunAsync("kv", "get", $"{name}/db", "--field", "password")).Ok().Trim());

        (await anonymous.RunWithInputAsync("vs_wrong\n", "approle", "login", roleId)).OneLineError(2, "Unauthenticated");
        (await _ctl.RunAsync("approle", "delete", name)).Ok();
        (await _ctl.RunAsync("approle", "read", name)).OneLineError(2, "NotFound");
    }

    [Fact]
    public async Task Login_WithoutASecretId_IsAUsageError()
    {
        (await new VaultCtl(fixture.Vault.Address).RunAsync("approle", "login", "vr_x")).OneLineError(1, "--secret-id-file");
    }

    [Fact]
    public async Task Write_WithABadCidr_IsInvalidArgumentNamingTheField()
    {
        (await _ctl.RunAsync("approle", "write", CliVaultFixture.Unique("bad"), "--policy", "root", "--bound-cidr", "nope")).OneLineError(2, "role.bound_cidrs[0]");
    }

    [Fact]
    public async Task SecretId_WithField_PrintsOnlyThatValue_AndTheAppLogsInWithIt()
    {
        var name = CliVaultFixture.Unique("field");
        (await _ctl.RunWithInputAsync($$"""{"rules":[{"path":"kv/{{name}}/*","capabilities":["read"]}]}""", "policy", "write", name, "-")).Ok();
        (await _ctl.RunAsync("approle", "write", name, "--policy", name)).Ok();
        var roleId = (await _ctl.RunAsync("approle", "role-id", name)).Ok().Trim();

        var secretId = (await _ctl.RunAsync("approle", "secret-id", name, "--field", "secret_id")).Ok();
        var accessor = (await _ctl.RunAsync("approle", "secret-id", name, "--field", "secret_id_accessor", "--json")).Json().GetString();

        Assert.Matches("^vs_[^\\s]+\n$", secretId);
        Assert.StartsWith("vsa_", accessor, StringComparison.Ordinal);
        var login = await new VaultCtl(fixture.Vault.Address).RunWithInputAsync(secretId, "approle", "login", roleId, "--json");
        Assert.StartsWith("vt_", login.Json().GetProperty("token").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SecretId_WithAnUnknownField_IsAUsageErrorBeforeAnyCall()
    {
        // Checked before the call: an unknown role would otherwise be NotFound (exit 2).
        (await _ctl.RunAsync("approle", "secret-id", CliVaultFixture.Unique("nosuch"), "--field", "password")).OneLineError(1, "--field: 'password' is not secret_id or secret_id_accessor");
    }
}
