using Vault.Rotators.Passwords;

namespace Vault.Tests.Rotators;

public sealed class PasswordPolicyTests
{
    private const string Lower = "abcdefghijklmnopqrstuvwxyz";

    [Fact]
    public void Default_IsValid_AndStrong()
    {
        Assert.Null(PasswordPolicy.Default.Validate());
        Assert.True(PasswordPolicy.Default.EntropyBits > 180);
    }

    public static TheoryData<PasswordPolicy, string> Invalid => new()
    {
        { new(7, PasswordPolicy.SafeAlphabet, false, false, false, false), "length" },
        { new(257, PasswordPolicy.SafeAlphabet, false, false, false, false), "length" },
        { new(32, "", false, false, false, false), "alphabet" },
        { new(32, Lower + " ", false, false, false, false), "alphabet" },
        { new(32, Lower + "é", false, false, false, false), "alphabet" },
        { new(32, Lower + "\t", false, false, false, false), "alphabet" },
        { new(32, Lower, RequireLower: true, RequireUpper: true, false, false), "require_upper" },
        { new(32, Lower, RequireLower: false, RequireUpper: false, RequireDigit: true, false), "require_digit" },
        { new(32, Lower + "ABC", false, false, false, RequireSymbol: true), "require_symbol" },
        { new(32, "ABC", RequireLower: true, false, false, false), "require_lower" },
        // 8 characters from two letters: 8 bits.
        { new(8, "ab", false, false, false, false), "length" },
        // 13 lower-case letters: 61 bits, just under the floor.
        { new(13, Lower, false, false, false, false), "length" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Validate_RejectsWithTheOffendingField(PasswordPolicy policy, string field)
    {
        var problem = policy.Validate();
        Assert.NotNull(problem);
        Assert.Equal(field, problem.Value.Field);
        Assert.False(string.IsNullOrWhiteSpace(problem.Value.Reason));
    }

    [Fact]
    public void Validate_AcceptsTheSmallestStrongEnoughPolicy()
    {
        // 14 lower-case letters: 65.8 bits.
        Assert.Null(new PasswordPolicy(14, Lower, RequireLower: true, false, false, false).Validate());
    }

    [Fact]
    public void Validate_IgnoresDuplicateAlphabetCharactersForEntropy()
    {
        var doubled = new PasswordPolicy(13, Lower + Lower, false, false, false, false);
        Assert.Equal(Lower, doubled.DistinctAlphabet);
        Assert.Equal("length", doubled.Validate()?.Field);
    }

    [Theory]
    [InlineData("abcdefgh", false)] // no upper, no digit
    [InlineData("abcdEFG1", true)]
    [InlineData("abcdEF1", false)] // too short
    [InlineData("abcdEFG12", false)] // too long
    [InlineData("abcdEF1!", false)] // '!' not in the alphabet
    public void IsSatisfiedBy_ChecksLengthAlphabetAndClasses(string password, bool expected)
    {
        var policy = new PasswordPolicy(8, PasswordPolicy.SafeAlphabet, RequireLower: true, RequireUpper: true, RequireDigit: true, RequireSymbol: false);
        Assert.Equal(expected, policy.IsSatisfiedBy(password));
    }
}
