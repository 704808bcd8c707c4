using Vault.Server;
using Vault.Server.Identity;

namespace Vault.Tests.Identity;

/// <summary>A person's bind against a real slapd over StartTLS that checks the directory's certificate.</summary>
public sealed class LdapDirectoryTests
{
    [Fact]
    public async Task StartTls_WithTheDirectorysCa_Binds_AndReadsThePersonsGroups_AndAnotherCaIsRefused()
    {
        using var ca = new TestCertificates();
        using var otherCa = new TestCertificates("Someone else's CA");
        await using var ldap = await LdapServer.StartWithTlsAsync(ca.IssueServer());
        var dn = await ldap.CreateUserAsync("person-password", "alice");
        await ldap.CreateGroupAsync("dbas", dn);
        await ldap.CreateGroupAsync("others", ldap.AdminDn);
        var endpoint = new LdapEndpoint(ldap.Uri, StartTls: true, ca.CaPem);

        var groups = LdapDirectory.BindAndReadGroups(endpoint, dn, "person-password", ldap.GroupsDn, "cn", TimeSpan.FromSeconds(5));

        Assert.Equal(["dbas"], groups);
        Assert.Null(LdapDirectory.BindAndReadGroups(endpoint, dn, "wrong", ldap.GroupsDn, "cn", TimeSpan.FromSeconds(5)));
        var refused = Assert.Throws<UnavailableException>(() => LdapDirectory.BindAndReadGroups(endpoint with { CaCertificatePem = otherCa.CaPem }, dn, "person-password", ldap.GroupsDn, "cn", TimeSpan.FromSeconds(5)));
        Assert.Contains("verified TLS", refused.Message, StringComparison.Ordinal);
    }
}
