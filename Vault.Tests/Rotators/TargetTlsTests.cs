using System.Security.Cryptography.X509Certificates;
using Vault.Rotators;
using Vault.Rotators.Ldap;
using Vault.Rotators.MySql;
using Vault.Rotators.Postgres;
using Vault.Rotators.Tls;
using static Vault.Tests.Rotators.RotatorTestKit;

namespace Vault.Tests.Rotators;

/// <summary>
/// Each rotator over verified TLS against a real server that takes TLS only, with a certificate from
/// a CA made for the run that names 127.0.0.1 alone: rotation works and the server sees TLS; a
/// certificate from another CA, for another name, expired, or with another key than the pinned one is
/// refused before anything is sent, in one line naming the host and what was wrong, and the account
/// keeps its password.
/// </summary>
public abstract class TargetTlsTests
{
    protected abstract ICredentialRotator Rotator { get; }

    /// <summary>The CA the server's certificate comes from.</summary>
    protected abstract TestCertificates Ca { get; }

    /// <summary>The target as the vault would store it: verified TLS, trusting <see cref="Ca"/>.</summary>
    protected abstract TargetConnection Verified(string host = "127.0.0.1");

    protected abstract Credential Admin { get; }

    protected abstract Task<string> CreateAccountAsync(string password);

    protected abstract Task<bool> CanLoginAsync(string account, string password);

    /// <summary>The server's log; what the vault sent is read from what it gained.</summary>
    protected abstract string ServerLog();

    /// <summary>What the server logs when it is sent the password change for <paramref name="account"/>.</summary>
    protected abstract string PasswordChangeLogged(string account);

    /// <summary>Proof, on the server's side, that the vault's sessions since <paramref name="logBefore"/> were TLS.</summary>
    protected abstract Task AssertServerSawTlsAsync(string account, int logBefore);

    /// <summary>A new server of the kind, TLS only, serving an expired certificate from <see cref="Ca"/>; returns it and its port.</summary>
    protected abstract Task<(IAsyncDisposable Server, int Port)> StartExpiredAsync();

    protected abstract TargetConnection OnPort(TargetConnection connection, int port);

    [Fact]
    public async Task VerifiedTls_RotatesAndLogsIn_AndTheServerSeesTls()
    {
        var old = NewPassword();
        var account = await CreateAccountAsync(old);
        var fresh = NewPassword();
        var logBefore = ServerLog().Length;

        await Rotator.SetPasswordAsync(Verified(), Admin, account, fresh, CancellationToken.None);
        var login = await Rotator.VerifyLoginAsync(Verified(), new Credential(account, fresh), CancellationToken.None);

        Assert.Equal(LoginOutcome.Accepted, login.Outcome);
        Assert.True(await CanLoginAsync(account, fresh));
        Assert.Null(Rotator.Transport(Verified()).Warning);
        await AssertServerSawTlsAsync(account, logBefore);
    }

    [Fact]
    public async Task CertificateFromAnotherCa_IsRefusedBeforeAnythingIsSent()
    {
        using var other = new TestCertificates("Another CA");
        var target = Verified() with { CaCertificates = other.CaPem };

        await RefusedAsync(target, "the certificate (issued by CN=Vault TLS test CA) does not chain to the target's CA certificates");
    }

    [Fact]
    public Task CertificateForAnotherName_IsRefusedBeforeAnythingIsSent() =>
        // The certificate names 127.0.0.1 only; localhost reaches the same server.
        RefusedAsync(Verified("localhost"), "the certificate does not name localhost (it is for 127.0.0.1)");

    [Fact]
    public async Task ExpiredCertificate_IsRefusedBeforeAnythingIsSent()
    {
        var (server, port) = await StartExpiredAsync();
        await using var serverScope = server;
        var account = "uid=nobody,dc=vault,dc=test";
        var ex = await FailsWith(RotatorFailure.Unreachable,
            () => Rotator.SetPasswordAsync(OnPort(Verified(), port), Admin, Rotator.Kind == "ldap" ? account : "nobody", NewPassword(), CancellationToken.None), Admin.Password);

        Assert.Equal(RotatorEffect.NotSent, ex.Effect);
        Assert.Matches(@"TLS certificate of 127\.0\.0\.1 refused, nothing sent: the certificate expired at \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$", ex.Message);
    }

    [Fact]
    public async Task PinnedKey_IsRequiredOnTopOfTheCa()
    {
        var account = await CreateAccountAsync(NewPassword());
        var fresh = NewPassword();
        using var elsewhere = X509Certificate2.CreateFromPem(Ca.IssueServer().CertificatePem);

        await Rotator.SetPasswordAsync(Verified() with { CertificatePin = ServerPin() }, Admin, account, fresh, CancellationToken.None);
        Assert.True(await CanLoginAsync(account, fresh));

        var wrongPin = Verified() with { CertificatePin = CertificateCheck.PinOf(elsewhere) };
        var ex = await FailsWith(RotatorFailure.Unreachable, () => Rotator.SetPasswordAsync(wrongPin, Admin, account, NewPassword(), CancellationToken.None), Admin.Password, fresh);
        Assert.Equal(RotatorEffect.NotSent, ex.Effect);
        Assert.True(await CanLoginAsync(account, fresh));
    }

    /// <summary>The pin of the certificate the server serves.</summary>
    protected abstract string ServerPin();

    private async Task RefusedAsync(TargetConnection target, string problem)
    {
        var old = NewPassword();
        var account = await CreateAccountAsync(old);
        var fresh = NewPassword();
        var logBefore = ServerLog().Length;

        var ex = await FailsWith(RotatorFailure.Unreachable, () => Rotator.SetPasswordAsync(target, Admin, account, fresh, CancellationToken.None), Admin.Password, fresh);
        var login = await Rotator.VerifyLoginAsync(target, new Credential(account, old), CancellationToken.None);

        Assert.Equal(RotatorEffect.NotSent, ex.Effect);
        Assert.DoesNotContain('\n', ex.Message);
        Assert.True(ex.Message.Contains($"TLS certificate of {target.Host} refused, nothing sent: {problem}", StringComparison.Ordinal), ex.Message);
        Assert.Equal(LoginOutcome.Unreachable, login.Outcome);
        Assert.Contains(problem, login.Reason, StringComparison.Ordinal);
        Assert.True(await CanLoginAsync(account, old));
        Assert.DoesNotContain(PasswordChangeLogged(account), ServerLog()[logBefore..], StringComparison.Ordinal);
    }
}

/// <summary>A TLS-only server of one kind and the CA its certificate (for 127.0.0.1 only) comes from.</summary>
public abstract class TlsServerFixture<TServer> : IAsyncLifetime where TServer : ServerFixture
{
    public TestCertificates Ca { get; } = new("Vault TLS test CA");

    public PemCertificate Certificate { get; private set; } = null!;

    public TServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Certificate = Ca.IssueServer(localhost: false);
        Server = await StartAsync(Certificate);
    }

    public abstract Task<TServer> StartAsync(PemCertificate certificate);

    public async Task DisposeAsync()
    {
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }
        Ca.Dispose();
    }

    public string Pin()
    {
        using var certificate = X509Certificate2.CreateFromPem(Certificate.CertificatePem);
        return CertificateCheck.PinOf(certificate);
    }
}

public sealed class PostgresTlsFixture : TlsServerFixture<PostgresServer>
{
    public override Task<PostgresServer> StartAsync(PemCertificate certificate) => PostgresServer.StartTlsOnlyAsync(certificate);
}

public sealed class MariaDbTlsFixture : TlsServerFixture<MariaDbServer>
{
    public override Task<MariaDbServer> StartAsync(PemCertificate certificate) => MariaDbServer.StartTlsOnlyAsync(certificate);
}

public sealed class LdapTlsFixture : TlsServerFixture<LdapServer>
{
    public override Task<LdapServer> StartAsync(PemCertificate certificate) => LdapServer.StartTlsOnlyAsync(certificate, Ca.CaPem);
}

public sealed class PostgresTlsTests(PostgresTlsFixture tls) : TargetTlsTests, IClassFixture<PostgresTlsFixture>, IDisposable
{
    private readonly PostgresRotator _rotator = new();

    public void Dispose() => _rotator.Dispose();

    protected override ICredentialRotator Rotator => _rotator;

    protected override TestCertificates Ca => tls.Ca;

    protected override TargetConnection Verified(string host = "127.0.0.1") =>
        Target(host, tls.Server.Port, tls.Server.Database, ("ssl_mode", "verify-full")) with { CaCertificates = tls.Ca.CaPem };

    protected override TargetConnection OnPort(TargetConnection connection, int port) => connection with { Port = port };

    protected override Credential Admin => new(tls.Server.SuperUser, tls.Server.SuperPassword);

    protected override Task<string> CreateAccountAsync(string password) => tls.Server.CreateLoginRoleAsync(password, "tls");

    protected override Task<bool> CanLoginAsync(string account, string password) => tls.Server.CanLoginAsync(account, password);

    protected override string ServerLog() => tls.Server.LogText();

    protected override string PasswordChangeLogged(string account) => $"ALTER ROLE \"{account}\"";

    protected override string ServerPin() => tls.Pin();

    protected override async Task AssertServerSawTlsAsync(string account, int logBefore)
    {
        // Every session of the account (the login check) was TLS, and the pooled admin session still open is too.
        var log = ServerLog()[logBefore..];
        var logins = log.Split('\n').Where(l => l.Contains($"connection authorized: user={account} ", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(logins);
        Assert.All(logins, l => Assert.Contains("SSL enabled (protocol=TLSv1.", l, StringComparison.Ordinal));
        var admin = await tls.Server.ScalarAsync(
            "SELECT count(*) FROM pg_catalog.pg_stat_ssl s JOIN pg_catalog.pg_stat_activity a USING (pid) WHERE a.application_name = 'vault-rotator' AND s.ssl");
        Assert.True(Convert.ToInt64(admin, System.Globalization.CultureInfo.InvariantCulture) > 0, "no TLS admin session of the rotator in pg_stat_ssl");
    }

    protected override async Task<(IAsyncDisposable Server, int Port)> StartExpiredAsync()
    {
        var server = await PostgresServer.StartTlsOnlyAsync(tls.Ca.IssueServer(expired: true));
        return (server, server.Port);
    }

    [Fact]
    public async Task AnUnverifiedModesAdminSession_IsNotReusedByAVerifyingOne()
    {
        // Both connect with Npgsql's Require; only the vault's check tells them apart, so the
        // admin pools must too: verify-full must not borrow a session require opened unchecked.
        var account = await CreateAccountAsync(NewPassword());
        var require = new TargetConnection("127.0.0.1", tls.Server.Port, tls.Server.Database, new Dictionary<string, string> { ["ssl_mode"] = "require" });
        var verifyFull = require with { Options = new Dictionary<string, string> { ["ssl_mode"] = "verify-full" } };

        await _rotator.SetPasswordAsync(require, Admin, account, NewPassword(), CancellationToken.None);
        var ex = await FailsWith(RotatorFailure.Unreachable, () => _rotator.SetPasswordAsync(verifyFull, Admin, account, NewPassword(), CancellationToken.None), Admin.Password);

        // The run's CA is not among the machine's trusted CAs.
        Assert.Equal(RotatorEffect.NotSent, ex.Effect);
        Assert.Contains("does not chain to the machine's trusted CAs", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APooledAdminSessionsRefusal_SaysWhy_EveryTime()
    {
        using var other = new TestCertificates("Another CA");
        var account = await CreateAccountAsync(NewPassword());
        var target = Verified() with { CaCertificates = other.CaPem };

        for (var attempt = 0; attempt < 2; attempt++)
        {
            var ex = await FailsWith(RotatorFailure.Unreachable, () => _rotator.SetPasswordAsync(target, Admin, account, NewPassword(), CancellationToken.None), Admin.Password);
            Assert.True(ex.Message.Contains("does not chain to the target's CA certificates", StringComparison.Ordinal), $"attempt {attempt + 1}: {ex.Message}");
        }
    }

    [Fact]
    public async Task ChannelBindingRequired_LoginChecksSucceedOverTls()
    {
        var password = NewPassword();
        var account = await CreateAccountAsync(password);
        var target = Target("127.0.0.1", tls.Server.Port, tls.Server.Database, ("ssl_mode", "verify-full"), ("channel_binding", "require")) with { CaCertificates = tls.Ca.CaPem };

        Assert.Equal(LoginOutcome.Accepted, (await _rotator.VerifyLoginAsync(target, new Credential(account, password), CancellationToken.None)).Outcome);
        Assert.Equal(LoginOutcome.Refused, (await _rotator.VerifyLoginAsync(target, new Credential(account, NewPassword()), CancellationToken.None)).Outcome);
    }
}

public sealed class MariaDbTlsTests(MariaDbTlsFixture tls) : TargetTlsTests, IClassFixture<MariaDbTlsFixture>
{
    private readonly MySqlRotator _rotator = new();

    protected override ICredentialRotator Rotator => _rotator;

    protected override TestCertificates Ca => tls.Ca;

    protected override TargetConnection Verified(string host = "127.0.0.1") =>
        Target(host, tls.Server.Port, "", ("ssl_mode", "verify-full")) with { CaCertificates = tls.Ca.CaPem };

    protected override TargetConnection OnPort(TargetConnection connection, int port) => connection with { Port = port };

    protected override Credential Admin => new(tls.Server.SuperUser, tls.Server.SuperPassword);

    protected override async Task<string> CreateAccountAsync(string password)
    {
        var account = await tls.Server.CreateLoginUserAsync(password, "tls");
        await tls.Server.ExecuteAsync($"ALTER USER '{account}'@'%' REQUIRE SSL");
        _tlsSessionsBefore = await TlsSessionsAsync();
        return account;
    }

    /// <summary>The server's count of TLS sessions it accepted (<c>Ssl_accepts</c>) when the last account was made.</summary>
    private long _tlsSessionsBefore;

    /// <summary>The server's <c>Ssl_accepts</c>, read on a session of its own (which counts too).</summary>
    private async Task<long> TlsSessionsAsync() =>
        Convert.ToInt64(await tls.Server.ScalarAsync("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'SSL_ACCEPTS'"), System.Globalization.CultureInfo.InvariantCulture);

    protected override Task<bool> CanLoginAsync(string account, string password) => tls.Server.CanLoginAsync(account, password);

    protected override string ServerLog() => tls.Server.GeneralLogText();

    protected override string PasswordChangeLogged(string account) => $"ALTER USER '{account}'";

    protected override string ServerPin() => tls.Pin();

    protected override async Task AssertServerSawTlsAsync(string account, int logBefore)
    {
        // The server counted the vault's sessions (the admin's, the login check's) as TLS sessions
        // it accepted, besides the one reading the count; it takes TLS only
        // (require_secure_transport), and the account was made to require it (CreateAccountAsync):
        // the server itself refused any session of either without TLS.
        var accepted = await TlsSessionsAsync() - _tlsSessionsBefore;
        Assert.True(accepted >= 3, $"the server accepted {accepted} TLS sessions during the rotation and its check, counting the one that read it");
        Assert.Equal("ANY", await tls.Server.ScalarAsync($"SELECT ssl_type FROM mysql.user WHERE User = '{account}'"));
        Assert.Equal(1L, Convert.ToInt64(await tls.Server.ScalarAsync("SELECT @@GLOBAL.require_secure_transport"), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains($"{account}@", ServerLog()[logBefore..], StringComparison.Ordinal);
    }

    protected override async Task<(IAsyncDisposable Server, int Port)> StartExpiredAsync()
    {
        var server = await MariaDbServer.StartTlsOnlyAsync(tls.Ca.IssueServer(expired: true));
        return (server, server.Port);
    }
}

public sealed class LdapTlsTests(LdapTlsFixture tls) : TargetTlsTests, IClassFixture<LdapTlsFixture>
{
    private readonly LdapRotator _rotator = new();

    protected override ICredentialRotator Rotator => _rotator;

    protected override TestCertificates Ca => tls.Ca;

    protected override TargetConnection Verified(string host = "127.0.0.1") =>
        Target(host, tls.Server.Port, tls.Server.BaseDn, ("tls", "starttls")) with { CaCertificates = tls.Ca.CaPem };

    protected override TargetConnection OnPort(TargetConnection connection, int port) => connection with { Port = port };

    protected override Credential Admin => new(tls.Server.AdminDn, tls.Server.AdminPassword);

    protected override Task<string> CreateAccountAsync(string password) => tls.Server.CreateUserAsync(password, "tls");

    protected override Task<bool> CanLoginAsync(string account, string password) => tls.Server.CanBindAsync(account, password);

    protected override string ServerLog() => tls.Server.LogText();

    protected override string PasswordChangeLogged(string account) => $"BIND dn=\"{tls.Server.AdminDn}\"";

    protected override string ServerPin() => tls.Pin();

    protected override Task AssertServerSawTlsAsync(string account, int logBefore)
    {
        var log = ServerLog()[logBefore..];
        Assert.Contains("TLS established", log, StringComparison.Ordinal);
        Assert.Contains($"BIND dn=\"{account}\"", log, StringComparison.Ordinal);
        return Task.CompletedTask;
    }

    protected override async Task<(IAsyncDisposable Server, int Port)> StartExpiredAsync()
    {
        // Offers StartTLS without requiring it: the fixture's own admin login cannot trust an expired certificate either.
        var server = await LdapServer.StartWithTlsAsync(tls.Ca.IssueServer(expired: true));
        return (server, server.Port);
    }

    [Fact]
    public async Task Ldaps_Rotates()
    {
        var account = await CreateAccountAsync(NewPassword());
        var fresh = NewPassword();
        var target = Target("127.0.0.1", tls.Server.LdapsPort, tls.Server.BaseDn, ("tls", "ldaps")) with { CaCertificates = tls.Ca.CaPem };

        await _rotator.SetPasswordAsync(target, Admin, account, fresh, CancellationToken.None);

        Assert.True(await CanLoginAsync(account, fresh));
        Assert.Null(_rotator.Transport(target).Warning);
    }

    [Fact]
    public async Task Plaintext_IsAnExplicitOptOut_ShownAsSuch_AndThisDirectoryRefusesIt()
    {
        var old = NewPassword();
        var account = await CreateAccountAsync(old);
        var plaintext = Target("127.0.0.1", tls.Server.Port, tls.Server.BaseDn, ("tls", "none"));

        var ex = await FailsWith(RotatorFailure.AdminRefused, () => _rotator.SetPasswordAsync(plaintext, Admin, account, NewPassword(), CancellationToken.None), Admin.Password);

        Assert.True(ex.Message.Contains("the directory refused the bind", StringComparison.Ordinal), ex.Message);
        Assert.Equal("none", _rotator.Transport(plaintext).Mode);
        Assert.StartsWith("plaintext:", _rotator.Transport(plaintext).Warning, StringComparison.Ordinal);
        Assert.True(await CanLoginAsync(account, old));
    }
}
