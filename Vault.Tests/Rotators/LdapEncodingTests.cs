using System.Formats.Asn1;
using System.Text;
using Vault.Rotators.Ldap;

namespace Vault.Tests.Rotators;

public sealed class LdapEncodingTests
{
    [Fact]
    public void PasswordModifyRequestValue_IsTheRfc3062Sequence()
    {
        const string dn = "uid=svc,ou=people,dc=example,dc=org";
        const string password = "N3w-Password_x";

        var expected = new AsnWriter(AsnEncodingRules.DER);
        using (expected.PushSequence())
        {
            expected.WriteOctetString(Encoding.UTF8.GetBytes(dn), new Asn1Tag(TagClass.ContextSpecific, 0));
            expected.WriteOctetString(Encoding.UTF8.GetBytes(password), new Asn1Tag(TagClass.ContextSpecific, 2));
        }

        Assert.Equal(Convert.ToHexString(expected.Encode()), Convert.ToHexString(LdapRotator.PasswordModifyRequestValue(dn, password)));
    }

    [Fact]
    public void PasswordModifyRequestValue_ReadsBackWithBerDecoding()
    {
        var value = LdapRotator.PasswordModifyRequestValue("cn=ünïcode,dc=example,dc=org", new string('p', 300));
        var reader = new AsnReader(value, AsnEncodingRules.BER).ReadSequence();
        Assert.Equal("cn=ünïcode,dc=example,dc=org", Encoding.UTF8.GetString(reader.ReadOctetString(new Asn1Tag(TagClass.ContextSpecific, 0))));
        Assert.Equal(new string('p', 300), Encoding.UTF8.GetString(reader.ReadOctetString(new Asn1Tag(TagClass.ContextSpecific, 2))));
        Assert.False(reader.HasData);
    }

    [Theory]
    [InlineData("uid=svc,ou=people,dc=example,dc=org", 4)]
    [InlineData("cn=Smith\\, John,dc=example,dc=org", 3)]
    [InlineData("cn=a+sn=b,dc=org", 2)]
    [InlineData("2.5.4.3=x,dc=org", 2)]
    [InlineData("CN = spaced , DC = org", 2)]
    public void Parse_AcceptsDns(string dn, int rdns) => Assert.Equal(rdns, DistinguishedName.Parse(dn)?.Count);

    [Theory]
    [InlineData("")]
    [InlineData("svc")]
    [InlineData("svc@example.org")]
    [InlineData("uid=svc,,dc=org")]
    [InlineData("=svc,dc=org")]
    [InlineData("uid=,dc=org")]
    [InlineData("u id=svc")]
    [InlineData("uid=svc\n,dc=org")]
    public void Parse_RefusesNonDns(string dn) => Assert.Null(DistinguishedName.Parse(dn));

    [Theory]
    [InlineData("uid=svc,ou=people,dc=example,dc=org", "dc=example,dc=org", true)]
    [InlineData("UID=svc,OU=People,DC=Example,DC=org", "dc=example, dc=org", true)]
    [InlineData("dc=example,dc=org", "dc=example,dc=org", true)]
    [InlineData("uid=svc,dc=other,dc=org", "dc=example,dc=org", false)]
    [InlineData("uid=svc,dc=org", "dc=example,dc=org", false)]
    public void IsUnder_ComparesWholeRdnsFromTheRoot(string dn, string baseDn, bool expected) =>
        Assert.Equal(expected, DistinguishedName.IsUnder(DistinguishedName.Parse(dn)!, DistinguishedName.Parse(baseDn)!));
}
