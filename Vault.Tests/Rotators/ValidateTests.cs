using Vault.Rotators;
using Vault.Rotators.Ldap;
using Vault.Rotators.MySql;
using Vault.Rotators.Postgres;

namespace Vault.Tests.Rotators;

public sealed class ValidateTests
{
    private static TargetConnection Target(string host = "db.internal", int port = 0, string database = "", params (string Key, string Value)[] options) =>
        new(host, port, database, options.ToDictionary(o => o.Key, o => o.Value));

    public static TheoryData<string> Kinds => new() { "postgres", "mysql", "ldap" };

    private static ICredentialRotator Rotator(string kind) => kind switch
    {
        "postgres" => new PostgresRotator(),
        "mysql" => new MySqlRotator(),
        _ => new LdapRotator(),
    };

    private static string GoodAccount(string kind) => kind == "ldap" ? "uid=svc,dc=example,dc=org" : "svc";

    [Fact]
    public void Registry_KnowsTheThreeKinds()
    {
        var registry = new RotatorRegistry([new PostgresRotator(), new MySqlRotator(), new LdapRotator()]);
        Assert.Equal(["ldap", "mysql", "postgres"], registry.Kinds);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Validate_AcceptsAPlainTarget(string kind) =>
        Assert.Null(Rotator(kind).Validate(Target(port: 1234), GoodAccount(kind)));

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Validate_RefusesBadHostPortAccountAndUnknownOptions(string kind)
    {
        var rotator = Rotator(kind);
        Assert.Equal("host", rotator.Validate(Target(host: ""), GoodAccount(kind))?.Field);
        Assert.Equal("host", rotator.Validate(Target(host: "db internal"), GoodAccount(kind))?.Field);
        Assert.Equal("port", rotator.Validate(Target(port: -1), GoodAccount(kind))?.Field);
        Assert.Equal("port", rotator.Validate(Target(port: 65536), GoodAccount(kind))?.Field);
        Assert.Null(rotator.Validate(Target(port: 65535), GoodAccount(kind)));
        Assert.Equal("account", rotator.Validate(Target(), "")?.Field);
        Assert.Equal("options", rotator.Validate(Target(options: ("no_such_option", "1")), GoodAccount(kind))?.Field);
    }

    [Fact]
    public void Postgres_Validate_ChecksSslModeAndRoleLength()
    {
        var rotator = new PostgresRotator();
        Assert.Null(rotator.Validate(Target(options: ("ssl_mode", "verify-full")), "svc"));
        Assert.Equal("options", rotator.Validate(Target(options: ("ssl_mode", "sometimes")), "svc")?.Field);
        Assert.Equal("account", rotator.Validate(Target(), new string('r', 64))?.Field);
        // Any name is fine once quoted.
        Assert.Null(rotator.Validate(Target(), "Odd \"Role\"; DROP TABLE x"));
    }

    [Fact]
    public void MySql_Validate_ChecksOptionsAndAccountForm()
    {
        var rotator = new MySqlRotator();
        Assert.Null(rotator.Validate(Target(options: [("account_host", "10.%"), ("ssl_mode", "required"), ("plaintext_fallback", "false")]), "svc@localhost"));
        Assert.Equal("options", rotator.Validate(Target(options: ("plaintext_fallback", "maybe")), "svc")?.Field);
        Assert.Equal("options", rotator.Validate(Target(options: ("ssl_mode", "sometimes")), "svc")?.Field);
        Assert.Equal("account", rotator.Validate(Target(), "svc@")?.Field);
        Assert.Equal("account", rotator.Validate(Target(), "@%")?.Field);
    }

    [Fact]
    public void Ldap_Validate_NeedsADnUnderTheBaseDn()
    {
        var rotator = new LdapRotator();
        Assert.Equal("account", rotator.Validate(Target(), "svc")?.Field);
        Assert.Equal("database", rotator.Validate(Target(database: "example.org"), "uid=svc,dc=example,dc=org")?.Field);
        Assert.Null(rotator.Validate(Target(database: "dc=example,dc=org"), "uid=svc,ou=people,dc=example,dc=org"));
        Assert.Equal("account", rotator.Validate(Target(database: "dc=example,dc=org"), "uid=svc,dc=other,dc=org")?.Field);
        Assert.Equal("options", rotator.Validate(Target(options: ("use_tls", "true")), "uid=svc,dc=example,dc=org")?.Field);
    }

    [Fact]
    public async Task Ldap_EphemeralUsers_AreNotSupported()
    {
        var rotator = new LdapRotator();
        Assert.False(rotator.SupportsEphemeralUsers);
        await Assert.ThrowsAsync<NotSupportedException>(() => rotator.CreateEphemeralUserAsync(
            Target(), new Credential("cn=admin,dc=example,dc=org", "x"), new EphemeralUser("u", "p", DateTimeOffset.UtcNow, []), CancellationToken.None));
        await Assert.ThrowsAsync<NotSupportedException>(() => rotator.RevokeEphemeralUserAsync(
            Target(), new Credential("cn=admin,dc=example,dc=org", "x"), "u", CancellationToken.None));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task VerifyLogin_WithAnEmptyPassword_IsRefusedWithoutAsking(string kind)
    {
        // Port 1 on loopback: nothing listens, so any attempt to connect would say Unreachable.
        var check = await Rotator(kind).VerifyLoginAsync(Target(host: "127.0.0.1", port: 1), new Credential(GoodAccount(kind), ""), CancellationToken.None);
        Assert.Equal(LoginOutcome.Refused, check.Outcome);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task SetPassword_WithAnEmptyPassword_IsPasswordRejectedWithoutAsking(string kind)
    {
        var admin = new Credential(kind == "ldap" ? "cn=admin,dc=example,dc=org" : "admin", "admin-pw");
        var ex = await Assert.ThrowsAsync<RotatorException>(() => Rotator(kind).SetPasswordAsync(Target(host: "127.0.0.1", port: 1), admin, GoodAccount(kind), "", CancellationToken.None));
        Assert.Equal(RotatorFailure.PasswordRejected, ex.Failure);
    }

    [Fact]
    public async Task Postgres_SetPassword_WithNonAsciiPassword_IsPasswordRejected_AndNamesNoPassword()
    {
        var ex = await Assert.ThrowsAsync<RotatorException>(() => new PostgresRotator().SetPasswordAsync(
            Target(host: "127.0.0.1", port: 1), new Credential("admin", "admin-pw"), "svc", "pässwörd-1234567", CancellationToken.None));
        Assert.Equal(RotatorFailure.PasswordRejected, ex.Failure);
        Assert.DoesNotContain("pässwörd", ex.Message, StringComparison.Ordinal);
    }
}
