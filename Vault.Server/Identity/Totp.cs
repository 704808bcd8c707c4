using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Vault.Server.Identity;

/// <summary>
/// Time-based one-time passwords (RFC 6238, over RFC 4226's HOTP): the code for a time step is
/// the dynamically truncated HMAC of the step's counter under the shared secret. The vault issues
/// HMAC-SHA1, 6-digit, 30-second codes — what every authenticator app reads from an otpauth URI.
/// </summary>
public static class Totp
{
    public const int Digits = 6;
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(30);

    /// <summary>The time step <paramref name="time"/> falls in (T0 = the Unix epoch).</summary>
    public static long StepAt(DateTimeOffset time) => time.ToUnixTimeSeconds() / (long)Period.TotalSeconds;

    /// <summary>The code for <paramref name="step"/>, <paramref name="digits"/> long, zero-padded.</summary>
    public static string Code(byte[] secret, long step, int digits = Digits, string algorithm = "SHA1")
    {
        Span<byte> counter = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(counter, step);
        var mac = algorithm switch
        {
#pragma warning disable CA5350 // RFC 6238's default, and what authenticator apps compute; HMAC does not rest on SHA-1's collision resistance
            "SHA1" => HMACSHA1.HashData(secret, counter),
#pragma warning restore CA5350
            "SHA256" => HMACSHA256.HashData(secret, counter),
            "SHA512" => HMACSHA512.HashData(secret, counter),
            _ => throw new ArgumentException($"'{algorithm}' is not SHA1, SHA256 or SHA512", nameof(algorithm)),
        };
        var offset = mac[^1] & 0x0F;
        var binary = (BinaryPrimitives.ReadInt32BigEndian(mac.AsSpan(offset, 4)) & 0x7FFF_FFFF) % (int)Math.Pow(10, digits);
        return binary.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(digits, '0');
    }

    /// <summary>RFC 4648 base32 without padding, as otpauth URIs carry secrets.</summary>
    public static string Base32(byte[] data)
    {
        const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        var text = new StringBuilder((data.Length * 8 + 4) / 5);
        int buffer = 0, bits = 0;
        foreach (var b in data)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                text.Append(Alphabet[(buffer >> (bits - 5)) & 31]);
                bits -= 5;
            }
        }
        if (bits > 0)
        {
            text.Append(Alphabet[(buffer << (5 - bits)) & 31]);
        }
        return text.ToString();
    }
}
