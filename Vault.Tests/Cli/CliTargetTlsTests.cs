using System.Globalization;
using Vault.Tests.Rotators;

namespace Vault.Tests.Cli;

/// <summary>
/// <c>vaultctl target add --ca-file --pin</c> against a PostgreSQL that takes TLS only, through the
/// whole server: the CA bundle is stored with the target, the rotation is verified, <c>target
/// show</c> and <c>target list</c> say how the vault reaches the system, and a certificate the target
/// does not trust fails the rotation in one line with nothing left pending.
/// </summary>
public sealed class CliTargetTlsTests(CliVaultFixture fixture, PostgresTlsFixture tls) : IClassFixture<CliVaultFixture>, IClassFixture<PostgresTlsFixture>
{
    private readonly VaultCtl _ctl = fixture.Ctl();

    private async Task<(string Name, string Role, string Password)> AddAsync(string caPem, params string[] extra)
    {
        var name = ServerHost.UniqueName("tls").Replace('_', '-');
        var password = "Today-" + Guid.NewGuid().ToString("N");
        var role = await tls.Server.CreateLoginRoleAsync(password, "clitls");
        var admin = $"infra/{name}-admin";
        (await _ctl.RunAsync("kv", "put", admin, $"username={tls.Server.SuperUser}", $"password={tls.Server.SuperPassword}")).Ok();
        var caFile = Path.Combine(Directory.CreateTempSubdirectory("vault-ca-").FullName, "ca.pem");
        await File.WriteAllTextAsync(caFile, caPem);
        (await _ctl.RunWithInputAsync(password + "\n",
            ["target", "add", name, "--kind", "postgres", "--host", "127.0.0.1", "--port", tls.Server.Port.ToString(CultureInfo.InvariantCulture),
             "--database", tls.Server.Database, "--account", role, "--admin-secret", admin, "--current-password-stdin",
             "--option", "ssl_mode=verify-full", "--ca-file", caFile, "--skip-verify", .. extra])).Ok();
        return (name, role, password);
    }

    [Fact]
    public async Task VerifiedTarget_Rotates_AndShowSaysHowItIsReached()
    {
        var (name, role, _) = await AddAsync(tls.Ca.CaPem, "--pin", tls.Pin());

        var rotated = (await _ctl.RunAsync("target", "rotate", name)).Ok();
        var show = (await _ctl.RunAsync("target", "show", name)).Ok();
        var json = (await _ctl.RunAsync("target", "show", name, "--json")).Json();
        var password = (await _ctl.RunAsync("target", "credential", name, "--field", "password")).Ok().Trim();

        Assert.Matches(@"(?m)^Outcome +succeeded$", rotated);
        Assert.Matches($@"(?m)^TLS +verify-full \(the target's CA certificates, key pinned {System.Text.RegularExpressions.Regex.Escape(tls.Pin())}\)$", show);
        Assert.Equal(tls.Ca.CaPem, json.GetProperty("connection").GetProperty("ca_certificates").GetString());
        Assert.Equal("verify-full", json.GetProperty("status").GetProperty("transport_mode").GetString());
        Assert.True(await tls.Server.CanLoginAsync(role, password));
    }

    [Fact]
    public async Task CertificateTheTargetDoesNotTrust_FailsTheRotationInOneLine_NothingPending()
    {
        using var other = new TestCertificates("Another CA");
        var (name, role, password) = await AddAsync(other.CaPem);

        var rotate = await _ctl.RunAsync("target", "rotate", name);
        var json = (await _ctl.RunAsync("target", "show", name, "--json")).Json();

        rotate.OneLineError(2, "TLS certificate of 127.0.0.1 refused, nothing sent: the certificate (issued by CN=Vault TLS test CA) does not chain to the target's CA certificates");
        var status = json.GetProperty("status");
        Assert.False(status.TryGetProperty("pending_step", out var pending) && pending.ValueKind == System.Text.Json.JsonValueKind.String, "a rotation refused before sending left a pending step");
        Assert.Equal(0, status.GetProperty("version").GetInt32());
        Assert.True(await tls.Server.CanLoginAsync(role, password), "the account's password changed");
    }

    [Fact]
    public async Task PlaintextOrUnverifiedTarget_IsFlaggedInShowAndList()
    {
        var name = ServerHost.UniqueName("plain").Replace('_', '-');
        (await _ctl.RunAsync("kv", "put", $"infra/{name}", "username=a", "password=b")).Ok();
        (await _ctl.RunWithInputAsync("x\n", "target", "add", name, "--kind", "postgres", "--host", "127.0.0.1", "--port", "1",
            "--account", "app", "--admin-secret", $"infra/{name}", "--current-password-stdin", "--skip-verify", "--option", "ssl_mode=require")).Ok();

        var show = (await _ctl.RunAsync("target", "show", name)).Ok();
        var list = (await _ctl.RunAsync("target", "list")).Ok();

        Assert.Matches(@"(?m)^TLS +require; WARNING: TLS without certificate verification: a machine in the middle can read the passwords$", show);
        Assert.Matches($@"(?m)^{name} .*tls unverified \(require\)$", list);
    }

    [Fact]
    public async Task BadCaBundleOrPin_IsInvalidArgumentNamingTheField()
    {
        var caFile = Path.Combine(Directory.CreateTempSubdirectory("vault-ca-").FullName, "ca.pem");
        await File.WriteAllTextAsync(caFile, "not a certificate");
        string[] common = ["target", "add", "bad-tls", "--kind", "postgres", "--host", "127.0.0.1", "--account", "app", "--admin-secret", "infra/none", "--rotate-now", "--skip-verify", "--option", "ssl_mode=verify-full"];

        var ca = await _ctl.RunAsync([.. common, "--ca-file", caFile]);
        var pin = await _ctl.RunAsync([.. common, "--pin", "md5:abc"]);
        var pinWithoutVerification = await _ctl.RunAsync(["target", "add", "bad-tls", "--kind", "postgres", "--host", "127.0.0.1", "--account", "app", "--admin-secret", "infra/none", "--rotate-now", "--skip-verify", "--option", "ssl_mode=require", "--pin", tls.Pin()]);

        ca.OneLineError(2, "target.connection.ca_certificates");
        pin.OneLineError(2, "target.connection.certificate_pin");
        pinWithoutVerification.OneLineError(2, "target.connection.certificate_pin: is only used when the system's certificate is checked, which mode 'require' does not (use ssl_mode verify-full or verify-ca)");
        (await _ctl.RunAsync("target", "show", "bad-tls")).OneLineError(2, "NotFound");
    }
}
