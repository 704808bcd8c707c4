using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Identity;

/// <summary>
/// People log in with their directory password against a real slapd over StartTLS checked against
/// a test CA; their directory groups map to vault groups whose policies their tokens hold; the
/// entity is the one a userpass login of the same name has; another CA's certificate is refused.
/// </summary>
public sealed class LdapLoginTests(SharedVault fixture) : IClassFixture<SharedVault>
{
    private TestVault Vault => fixture.Vault;

    private LdapService.LdapServiceClient Ldap => new(Vault.Channel);

    [Fact]
    public async Task ADirectoryLogin_OverVerifiedTls_MapsGroupsToPolicies_ForTheSameEntityAsUserpass_AndAnotherCaIsRefused()
    {
        using var ca = new TestCertificates();
        using var otherCa = new TestCertificates("Someone else's CA");
        await using var directory = await LdapServer.StartWithTlsAsync(ca.IssueServer());
        var tag = Guid.NewGuid().ToString("N")[..8];
        var user = $"alice{tag}";
        var dn = await directory.CreateUserAsync("directory-password", user);
        // CreateUserAsync makes the uid unique: the person's login name is the uid it made.
        var uid = dn.Split(',')[0]["uid=".Length..];
        await directory.CreateGroupAsync($"dbas-{tag}", dn);
        await directory.CreateGroupAsync($"others-{tag}", directory.AdminDn);
        await Vault.Kv.PutAsync(new PutSecretRequest { Path = $"ldap-{tag}/db", Data = { ["password"] = "for-the-dbas" } }, Vault.As());
        await Vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = $"dba-{tag}", Rules = { new PolicyRule { Path = $"kv/ldap-{tag}/*", Capabilities = { "read" } } } } }, Vault.As());
        var identity = new IdentityService.IdentityServiceClient(Vault.Channel);
        await identity.PutGroupAsync(new PutGroupRequest { Group = new Group { Name = $"db-team-{tag}", Policies = { $"dba-{tag}" } } }, Vault.As());
        await identity.PutGroupAsync(new PutGroupRequest { Group = new Group { Name = $"other-team-{tag}", Policies = { "root" } } }, Vault.As());
        var config = new LdapConfig
        {
            Url = directory.Uri.TrimEnd('/'),
            StartTls = true,
            CaCertificatePem = ca.CaPem,
            UserDnTemplate = $"uid={{{{username}}}},{directory.PeopleDn}",
            GroupBaseDn = directory.GroupsDn,
            GroupMap = { [$"dbas-{tag}"] = $"db-team-{tag}", [$"others-{tag}"] = $"other-team-{tag}" },
        };
        await Ldap.SetConfigAsync(new SetLdapConfigRequest { Config = config }, Vault.As());

        var login = await Ldap.LoginAsync(new LdapLoginRequest { Username = uid, Password = "directory-password" });

        Assert.Equal(uid, login.Info.Entity);
        Assert.Equal("for-the-dbas", (await Vault.Kv.GetAsync(new GetSecretRequest { Path = $"ldap-{tag}/db" }, Vault.As(login.Token))).Data["password"]);
        // Not a member of the group mapped to root.
        await Rpc.FailsWith(StatusCode.PermissionDenied, () => Vault.Kv.PutAsync(new PutSecretRequest { Path = $"ldap-{tag}/db", Data = { ["x"] = "y" } }, Vault.As(login.Token)).ResponseAsync);
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => Ldap.LoginAsync(new LdapLoginRequest { Username = uid, Password = "wrong" }).ResponseAsync);
        // One entity per person: a userpass login of the same name is the same entity.
        await new UserpassService.UserpassServiceClient(Vault.Channel).PutUserAsync(new PutUserRequest { User = new User { Name = uid }, Password = "a userpass password" }, Vault.As());
        var userpass = await new UserpassService.UserpassServiceClient(Vault.Channel).LoginAsync(new UserpassLoginRequest { Username = uid, Password = "a userpass password" });
        var entity = await identity.GetEntityAsync(new GetEntityRequest { Name = uid }, Vault.As());
        Assert.Equal(login.Info.Entity, userpass.Info.Entity);
        var audit = (await new AuditService.AuditServiceClient(Vault.Channel).TailAsync(new TailAuditRequest { Rpc = "LdapService/Login", Limit = 2 }, Vault.As())).Entries;
        // The login names the person; the refused one does not keep the name as typed.
        Assert.Equal([("ok", uid, entity.Id), ("error", "", "")], audit.Select(e => (e.Outcome, e.Entity, e.EntityId)));
        Assert.All(audit, e => Assert.Equal("auth/ldap/login", e.Path));
        DataDirectoryScan.AssertNoneAppear(Vault.DataDir, ["directory-password"]);

        // A directory login configured to require MFA of everyone: the person (not enrolled) is refused after the right password.
        config.RequireMfa = true;
        await Ldap.SetConfigAsync(new SetLdapConfigRequest { Config = config }, Vault.As());
        var required = await Rpc.FailsWith(StatusCode.FailedPrecondition, () => Ldap.LoginAsync(new LdapLoginRequest { Username = uid, Password = "directory-password" }).ResponseAsync);
        Assert.Contains("not enrolled", required.Status.Detail, StringComparison.Ordinal);
        config.RequireMfa = false;

        config.CaCertificatePem = otherCa.CaPem;
        await Ldap.SetConfigAsync(new SetLdapConfigRequest { Config = config }, Vault.As());
        var refused = await Rpc.FailsWith(StatusCode.Unavailable, () => Ldap.LoginAsync(new LdapLoginRequest { Username = uid, Password = "directory-password" }).ResponseAsync);
        Assert.Contains("verified TLS", refused.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadConfig_IsInvalidArgumentNamingTheField_AndPlaintextIsRefused()
    {
        using var ca = new TestCertificates();
        async Task Refused(string field, LdapConfig config)
        {
            var ex = await Rpc.FailsWith(StatusCode.InvalidArgument, () => Ldap.SetConfigAsync(new SetLdapConfigRequest { Config = config }, Vault.As()).ResponseAsync);
            Assert.StartsWith(field + ":", ex.Status.Detail, StringComparison.Ordinal);
        }
        LdapConfig Good() => new() { Url = "ldap://127.0.0.1:389", StartTls = true, CaCertificatePem = ca.CaPem, UserDnTemplate = "uid={{username}},dc=x", GroupBaseDn = "dc=x" };

        await Refused("config.start_tls", Good().Apply(c => c.StartTls = false));
        await Refused("config.url", Good().Apply(c => c.Url = "http://127.0.0.1"));
        await Refused("config.ca_certificate_pem", Good().Apply(c => c.CaCertificatePem = "not a pem"));
        await Refused("config.user_dn_template", Good().Apply(c => c.UserDnTemplate = "uid=fixed,dc=x"));
        await Refused("config.group_map[dbas]", Good().Apply(c => c.GroupMap.Add("dbas", "no-such-group")));
    }
}

internal static class LdapConfigExtensions
{
    public static LdapConfig Apply(this LdapConfig config, Action<LdapConfig> change)
    {
        change(config);
        return config;
    }
}
