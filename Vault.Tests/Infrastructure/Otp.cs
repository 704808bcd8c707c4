using Vault.Server.Identity;

namespace Vault.Tests.Infrastructure;

/// <summary>A person's authenticator, for tests: the secret of an otpauth URI and the codes it gives.</summary>
public static class Otp
{
    /// <summary>The secret an <c>otpauth://</c> URI carries (base32, RFC 4648, unpadded).</summary>
    public static byte[] SecretOf(string otpauthUri)
    {
        var text = otpauthUri.Split("secret=")[1].Split('&')[0];
        var bytes = new List<byte>();
        int buffer = 0, bits = 0;
        foreach (var c in text)
        {
            buffer = (buffer << 5) | "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".IndexOf(c, StringComparison.Ordinal);
            bits += 5;
            if (bits >= 8)
            {
                bytes.Add((byte)(buffer >> (bits - 8)));
                bits -= 8;
            }
        }
        return [.. bytes];
    }

    /// <summary>The code for the step <paramref name="stepsFromNow"/> steps from <paramref name="now"/>.</summary>
    public static string Code(byte[] secret, DateTimeOffset now, int stepsFromNow = 0) => Totp.Code(secret, Totp.StepAt(now) + stepsFromNow);

    /// <summary>The code of the enrolment behind <paramref name="otpauthUri"/> at <paramref name="now"/> (default: the machine's now).</summary>
    public static string Code(string otpauthUri, DateTimeOffset? now = null) => Code(SecretOf(otpauthUri), now ?? DateTimeOffset.UtcNow);
}
