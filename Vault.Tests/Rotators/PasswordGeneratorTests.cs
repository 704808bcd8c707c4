using Vault.Rotators.Passwords;

namespace Vault.Tests.Rotators;

public sealed class PasswordGeneratorTests
{
    public static TheoryData<PasswordPolicy> Policies => new()
    {
        PasswordPolicy.Default,
        new(32, "aA1!", RequireLower: true, RequireUpper: true, RequireDigit: true, RequireSymbol: true),
        new(12, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#%*+-./:=?@^_~", true, true, true, true),
        new(64, "0123456789abcdef", false, false, RequireDigit: true, false),
        new(256, PasswordPolicy.SafeAlphabet, true, true, true, false),
    };

    [Theory]
    [MemberData(nameof(Policies))]
    public void Generate_AlwaysSatisfiesThePolicy(PasswordPolicy policy)
    {
        Assert.Null(policy.Validate());
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 2_000; i++)
        {
            var password = PasswordGenerator.Generate(policy);
            Assert.True(policy.IsSatisfiedBy(password), $"generated password {i} does not satisfy the policy");
            seen.Add(password);
        }
        // At least 64 bits each: a repeat means the generator is broken.
        Assert.Equal(2_000, seen.Count);
    }

    [Fact]
    public void Generate_WithAnInvalidPolicy_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => PasswordGenerator.Generate(new PasswordPolicy(4, "ab", false, false, false, false)));
        Assert.Contains("length", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_DrawsEveryCharacterRoughlyUniformly()
    {
        // 64 symbols, no required classes: every character is an independent uniform draw.
        var policy = new PasswordPolicy(32, PasswordPolicy.SafeAlphabet, false, false, false, false);
        var counts = new Dictionary<char, int>();
        const int passwords = 4_000;
        for (var i = 0; i < passwords; i++)
        {
            foreach (var c in PasswordGenerator.Generate(policy))
            {
                counts[c] = counts.GetValueOrDefault(c) + 1;
            }
        }
        Assert.Equal(64, counts.Count);
        var expected = passwords * 32 / 64.0;
        var chiSquare = counts.Values.Sum(n => (n - expected) * (n - expected) / expected);
        // 63 degrees of freedom: mean 63, standard deviation about 11.2. Far above this means a
        // biased draw (e.g. modulo bias or a stuck symbol); the chance of a false alarm is nil.
        Assert.True(chiSquare < 63 + 10 * 11.2, $"chi-square {chiSquare:F1} over 63 degrees of freedom");

        // Per position, too: a generator that placed required classes at fixed spots would fail here.
        var first = new int[64];
        var alphabet = policy.DistinctAlphabet;
        for (var i = 0; i < 6_400; i++)
        {
            first[alphabet.IndexOf(PasswordGenerator.Generate(PasswordPolicy.Default)[0], StringComparison.Ordinal)]++;
        }
        var chiFirst = first.Sum(n => (n - 100.0) * (n - 100.0) / 100.0);
        Assert.True(chiFirst < 63 + 10 * 11.2, $"first-character chi-square {chiFirst:F1} over 63 degrees of freedom");
    }
}
