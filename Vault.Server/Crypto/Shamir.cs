using System.Security.Cryptography;

namespace Vault.Server.Crypto;

/// <summary>
/// Shamir's secret sharing over GF(2^8), byte by byte, as HashiCorp's <c>shamir</c> package does
/// it: each byte of the secret is the constant term of its own random polynomial of degree
/// <c>threshold − 1</c>, and a share is that polynomial evaluated at the share's x coordinate (one
/// byte, distinct and non-zero, appended to the share). Any <c>threshold</c> shares give the
/// secret back by Lagrange interpolation at x = 0; fewer give no information about it (every value
/// of the secret is equally likely).
/// <para>
/// The field is GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1. Arithmetic on secret
/// values has no secret-dependent branches or table lookups: multiplication is a fixed
/// eight-round shift-and-add with masks, and the inverse is a^254 by a fixed chain of
/// multiplications. Randomness comes from <see cref="RandomNumberGenerator"/>.
/// </para>
/// <para>
/// Nothing here can tell a wrong share from a right one: any <c>threshold</c> shares interpolate
/// to some key. Whoever uses the result must check it (the unseal key must open the keyring, whose
/// AEAD tag says whether it did).
/// </para>
/// </summary>
internal static class Shamir
{
    public const int MaxParts = 255;

    /// <summary>Splits <paramref name="secret"/> into <paramref name="parts"/> shares, any <paramref name="threshold"/> of which rebuild it.</summary>
    /// <returns>The shares: <c>secret.Length + 1</c> bytes each, the last one the share's x coordinate.</returns>
    /// <exception cref="ArgumentException">An empty secret, or not 2 ≤ threshold ≤ parts ≤ 255.</exception>
    public static byte[][] Split(ReadOnlySpan<byte> secret, int parts, int threshold)
    {
        Validate(secret, parts, threshold);
        // x coordinates: distinct, non-zero, in random order (they are not secret).
        var all = Enumerable.Range(1, MaxParts).Select(i => (byte)i).ToArray();
        RandomNumberGenerator.Shuffle(all.AsSpan());
        return Split(secret, all.AsSpan(0, parts), threshold);
    }

    /// <summary>As <see cref="Split(ReadOnlySpan{byte}, int, int)"/>, at the given x coordinates (tests fix them to look at the distribution of shares).</summary>
    internal static byte[][] Split(ReadOnlySpan<byte> secret, ReadOnlySpan<byte> xs, int threshold)
    {
        Validate(secret, xs.Length, threshold);
        if (xs.Contains((byte)0) || xs.ToArray().Distinct().Count() != xs.Length)
        {
            throw new ArgumentException("x coordinates must be distinct and non-zero", nameof(xs));
        }
        var shares = new byte[xs.Length][];
        for (var i = 0; i < shares.Length; i++)
        {
            shares[i] = new byte[secret.Length + 1];
            shares[i][secret.Length] = xs[i];
        }
        var coefficients = new byte[threshold];
        try
        {
            for (var b = 0; b < secret.Length; b++)
            {
                coefficients[0] = secret[b];
                RandomNumberGenerator.Fill(coefficients.AsSpan(1));
                for (var i = 0; i < shares.Length; i++)
                {
                    shares[i][b] = Evaluate(coefficients, xs[i]);
                }
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(coefficients);
        }
        return shares;
    }

    /// <summary>Rebuilds the secret from shares made by <see cref="Split(ReadOnlySpan{byte}, int, int)"/> (at least its threshold of them).</summary>
    /// <exception cref="ArgumentException">Fewer than two shares, shares of different or too short lengths, or two shares with the same x coordinate (the same share given twice).</exception>
    public static byte[] Combine(IReadOnlyList<byte[]> shares)
    {
        ArgumentNullException.ThrowIfNull(shares);
        if (shares.Count < 2)
        {
            throw new ArgumentException("at least two shares are needed", nameof(shares));
        }
        var length = shares[0].Length;
        if (length < 2 || shares.Any(s => s is null || s.Length != length))
        {
            throw new ArgumentException("the shares are not of one split: their lengths differ", nameof(shares));
        }
        var xs = shares.Select(s => s[length - 1]).ToArray();
        if (xs.Contains((byte)0))
        {
            throw new ArgumentException("a share is malformed (x coordinate 0)", nameof(shares));
        }
        if (xs.Distinct().Count() != xs.Length)
        {
            throw new ArgumentException("the same share was given twice", nameof(shares));
        }
        // The Lagrange basis at 0 depends only on the (public) x coordinates: computed once.
        var basis = new byte[xs.Length];
        for (var i = 0; i < xs.Length; i++)
        {
            byte numerator = 1, denominator = 1;
            for (var j = 0; j < xs.Length; j++)
            {
                if (i != j)
                {
                    numerator = Multiply(numerator, xs[j]);
                    denominator = Multiply(denominator, (byte)(xs[i] ^ xs[j]));
                }
            }
            basis[i] = Multiply(numerator, Inverse(denominator));
        }
        var secret = new byte[length - 1];
        for (var b = 0; b < secret.Length; b++)
        {
            byte value = 0;
            for (var i = 0; i < shares.Count; i++)
            {
                value ^= Multiply(basis[i], shares[i][b]);
            }
            secret[b] = value;
        }
        return secret;
    }

    /// <summary>The polynomial with <paramref name="coefficients"/> (constant term first) at <paramref name="x"/>, by Horner's rule.</summary>
    private static byte Evaluate(ReadOnlySpan<byte> coefficients, byte x)
    {
        byte result = 0;
        for (var i = coefficients.Length - 1; i >= 0; i--)
        {
            result = (byte)(Multiply(result, x) ^ coefficients[i]);
        }
        return result;
    }

    /// <summary>Multiplication in GF(2^8) mod x^8 + x^4 + x^3 + x + 1, with no branch or lookup on the operands.</summary>
    internal static byte Multiply(byte a, byte b)
    {
        int x = a, y = b, product = 0;
        for (var i = 0; i < 8; i++)
        {
            product ^= -(y & 1) & x;
            y >>= 1;
            // x·2, reduced when its top bit was set: the mask is all ones or zero.
            x = ((x << 1) ^ (-((x >> 7) & 1) & 0x11B)) & 0xFF;
        }
        return (byte)product;
    }

    /// <summary>The multiplicative inverse, a^254 (0 for 0), by a fixed chain of squarings and multiplications.</summary>
    internal static byte Inverse(byte a)
    {
        // 254 = 0b11111110: a^2 · a^4 · … · a^128.
        byte result = 1, power = a;
        for (var i = 1; i < 8; i++)
        {
            power = Multiply(power, power);
            result = Multiply(result, power);
        }
        return result;
    }

    private static void Validate(ReadOnlySpan<byte> secret, int parts, int threshold)
    {
        if (secret.IsEmpty)
        {
            throw new ArgumentException("the secret is empty", nameof(secret));
        }
        if (threshold < 2 || threshold > parts || parts > MaxParts)
        {
            throw new ArgumentException($"need 2 ≤ threshold ≤ shares ≤ {MaxParts} (got threshold {threshold}, shares {parts})", nameof(threshold));
        }
    }
}
