using System.Text;
using Vault.Server.Identity;

namespace Vault.Tests.Identity;

/// <summary>The TOTP computation against RFC 6238's own test vectors (Appendix B), and base32 against RFC 4648's.</summary>
public sealed class TotpTests
{
    private static readonly Dictionary<string, byte[]> Seeds = new()
    {
        ["SHA1"] = Encoding.ASCII.GetBytes("12345678901234567890"),
        ["SHA256"] = Encoding.ASCII.GetBytes("12345678901234567890123456789012"),
        ["SHA512"] = Encoding.ASCII.GetBytes("1234567890123456789012345678901234567890123456789012345678901234"),
    };

    [Theory]
    [InlineData(59L, "94287082", "46119246", "90693936")]
    [InlineData(1111111109L, "07081804", "68084774", "25091201")]
    [InlineData(1111111111L, "14050471", "67062674", "99943326")]
    [InlineData(1234567890L, "89005924", "91819424", "93441116")]
    [InlineData(2000000000L, "69279037", "90698825", "38618901")]
    [InlineData(20000000000L, "65353130", "77737706", "47863826")]
    public void Code_MatchesTheRfc6238Vectors(long unixSeconds, string sha1, string sha256, string sha512)
    {
        var step = Totp.StepAt(DateTimeOffset.FromUnixTimeSeconds(unixSeconds));

        Assert.Equal(sha1, Totp.Code(Seeds["SHA1"], step, digits: 8, "SHA1"));
        Assert.Equal(sha256, Totp.Code(Seeds["SHA256"], step, digits: 8, "SHA256"));
        Assert.Equal(sha512, Totp.Code(Seeds["SHA512"], step, digits: 8, "SHA512"));
    }

    [Fact]
    public void SixDigitCodes_AreTheLastSixOfTheEightDigitOnes()
    {
        // RFC 4226's truncation: the same number modulo 10^6.
        Assert.Equal("287082", Totp.Code(Seeds["SHA1"], Totp.StepAt(DateTimeOffset.FromUnixTimeSeconds(59))));
    }

    [Theory]
    [InlineData("", "")]
    [InlineData("f", "MY")]
    [InlineData("fo", "MZXQ")]
    [InlineData("foo", "MZXW6")]
    [InlineData("foob", "MZXW6YQ")]
    [InlineData("fooba", "MZXW6YTB")]
    [InlineData("foobar", "MZXW6YTBOI")]
    public void Base32_MatchesRfc4648_WithoutPadding(string data, string expected)
    {
        Assert.Equal(expected, Totp.Base32(Encoding.ASCII.GetBytes(data)));
    }
}
