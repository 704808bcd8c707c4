using System.Security.Cryptography;
using Vault.Server.Crypto;

namespace Vault.Tests.Crypto;

/// <summary>
/// Shamir's secret sharing, by its properties: any threshold of the shares rebuild the secret,
/// fewer say nothing about it (their distribution does not depend on the secret: a chi-squared
/// test over one-byte secrets), the same share twice or shares of different splits are refused,
/// and the field arithmetic agrees with a plain reference implementation on every input.
/// </summary>
public sealed class ShamirTests
{
    [Fact]
    public void AnyThresholdOfTheShares_RebuildTheSecret_AndSoDoMore()
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        var shares = Shamir.Split(secret, parts: 5, threshold: 3);

        Assert.Equal(5, shares.Length);
        Assert.All(shares, s => Assert.Equal(33, s.Length));
        foreach (var subset in Subsets(5).Where(s => s.Count >= 3))
        {
            Assert.Equal(secret, Shamir.Combine(subset.Select(i => shares[i]).ToList()));
        }
    }

    [Fact]
    public void FewerThanTheThreshold_GiveSomethingElse()
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        var shares = Shamir.Split(secret, parts: 5, threshold: 3);

        // Two shares interpolate a line, not the secret's polynomial: with 32 random bytes, never equal.
        foreach (var pair in Subsets(5).Where(s => s.Count == 2))
        {
            Assert.NotEqual(secret, Shamir.Combine(pair.Select(i => shares[i]).ToList()));
        }
    }

    [Theory]
    [InlineData(2, 2)]
    [InlineData(255, 2)]
    [InlineData(255, 255)]
    [InlineData(10, 7)]
    public void TheExtremes_Work(int parts, int threshold)
    {
        var secret = RandomNumberGenerator.GetBytes(16);
        var shares = Shamir.Split(secret, parts, threshold);

        Assert.Equal(parts, shares.Select(s => s[^1]).Distinct().Count());
        Assert.DoesNotContain(shares, s => s[^1] == 0);
        Assert.Equal(secret, Shamir.Combine(shares.Take(threshold).ToList()));
        Assert.Equal(secret, Shamir.Combine(shares.TakeLast(threshold).ToList()));
    }

    /// <summary>
    /// Threshold − 1 shares, at fixed x coordinates, are uniformly distributed whatever the secret:
    /// for threshold 2 the one share's byte, and for threshold 3 the pair of bytes (65,536 cells),
    /// each for the secrets 0x00 and 0xFF. A chi-squared statistic beyond the 1-in-a-million
    /// quantile fails (a leak of the secret, or coefficients that are not uniform, shifts it far more).
    /// </summary>
    [Theory]
    [InlineData(2, 0x00)]
    [InlineData(2, 0xFF)]
    [InlineData(3, 0x00)]
    [InlineData(3, 0xFF)]
    public void FewerThanTheThreshold_AreUniform_WhateverTheSecret(int threshold, int secretByte)
    {
        byte[] xs = [0x53, 0xCA, 0x01];
        var cells = 1 << (8 * (threshold - 1));
        var samples = cells * 8;
        var counts = new int[cells];
        for (var n = 0; n < samples; n++)
        {
            var shares = Shamir.Split([(byte)secretByte], xs.AsSpan(0, threshold), threshold);
            var cell = 0;
            for (var i = 0; i < threshold - 1; i++)
            {
                cell = (cell << 8) | shares[i][0];
            }
            counts[cell]++;
        }

        var expected = (double)samples / cells;
        var chiSquared = counts.Sum(c => (c - expected) * (c - expected) / expected);
        // Wilson–Hilferty: the chi-squared quantile for k degrees of freedom at z standard deviations.
        var k = cells - 1.0;
        var z = 4.753; // one in a million, one-sided
        var bound = k * Math.Pow(1 - (2 / (9 * k)) + (z * Math.Sqrt(2 / (9 * k))), 3);
        Assert.True(chiSquared < bound, $"chi-squared {chiSquared:F1} over {cells} cells exceeds {bound:F1}: the shares are not uniform");
    }

    [Fact]
    public void TheSameShareTwice_IsRefused_AsAreSharesOfDifferentLengths_OrTooFew()
    {
        var shares = Shamir.Split(RandomNumberGenerator.GetBytes(32), parts: 3, threshold: 2);
        var other = Shamir.Split(RandomNumberGenerator.GetBytes(16), parts: 3, threshold: 2);

        Assert.Contains("twice", Assert.Throws<ArgumentException>(() => Shamir.Combine([shares[0], (byte[])shares[0].Clone()])).Message, StringComparison.Ordinal);
        Assert.Contains("lengths differ", Assert.Throws<ArgumentException>(() => Shamir.Combine([shares[0], other[1]])).Message, StringComparison.Ordinal);
        Assert.Contains("at least two", Assert.Throws<ArgumentException>(() => Shamir.Combine([shares[0]])).Message, StringComparison.Ordinal);
        var zeroX = (byte[])shares[1].Clone();
        zeroX[^1] = 0;
        Assert.Contains("malformed", Assert.Throws<ArgumentException>(() => Shamir.Combine([shares[0], zeroX])).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ACorruptedShare_GivesAnotherSecret_NeverSilentlyTheRightOne()
    {
        // Detection is the caller's (the keyring's AEAD tag); here: a flipped byte changes the result.
        var secret = RandomNumberGenerator.GetBytes(32);
        var shares = Shamir.Split(secret, parts: 3, threshold: 2);
        var corrupted = (byte[])shares[1].Clone();
        corrupted[7] ^= 0x01;

        var rebuilt = Shamir.Combine([shares[0], corrupted]);

        Assert.NotEqual(secret, rebuilt);
        Assert.Equal(31, rebuilt.Zip(secret).Count(p => p.First == p.Second));
    }

    [Theory]
    [InlineData(3, 1)]
    [InlineData(3, 4)]
    [InlineData(256, 2)]
    [InlineData(2, 0)]
    public void BadParameters_AreRefused(int parts, int threshold) =>
        Assert.Contains("threshold", Assert.Throws<ArgumentException>(() => Shamir.Split([1, 2, 3], parts, threshold)).Message, StringComparison.Ordinal);

    [Fact]
    public void AnEmptySecret_IsRefused() =>
        Assert.Throws<ArgumentException>(() => Shamir.Split([], 3, 2));

    [Fact]
    public void FieldMultiplication_AgreesWithAReference_OnEveryPair_AndEveryNonZeroHasItsInverse()
    {
        for (var a = 0; a < 256; a++)
        {
            for (var b = 0; b < 256; b++)
            {
                Assert.Equal(ReferenceMultiply((byte)a, (byte)b), Shamir.Multiply((byte)a, (byte)b));
            }
            if (a != 0)
            {
                Assert.Equal(1, Shamir.Multiply((byte)a, Shamir.Inverse((byte)a)));
            }
        }
        // A known product in the AES field (FIPS 197, 4.2): {57} · {83} = {c1}.
        Assert.Equal(0xC1, Shamir.Multiply(0x57, 0x83));
    }

    /// <summary>Schoolbook carry-less multiplication, then reduction by the AES polynomial.</summary>
    private static byte ReferenceMultiply(byte a, byte b)
    {
        var product = 0;
        for (var i = 0; i < 8; i++)
        {
            if ((b & (1 << i)) != 0)
            {
                product ^= a << i;
            }
        }
        for (var bit = 14; bit >= 8; bit--)
        {
            if ((product & (1 << bit)) != 0)
            {
                product ^= 0x11B << (bit - 8);
            }
        }
        return (byte)product;
    }

    private static IEnumerable<List<int>> Subsets(int n) =>
        Enumerable.Range(1, (1 << n) - 1).Select(mask => Enumerable.Range(0, n).Where(i => (mask & (1 << i)) != 0).ToList());
}
