using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Vault.Rotators.Postgres;

/// <summary>
/// Builds the SCRAM-SHA-256 verifier PostgreSQL stores in <c>pg_authid.rolpassword</c>
/// (RFC 5802 / RFC 7677), so <c>ALTER ROLE ... PASSWORD</c> carries the verifier and never the plaintext.
/// </summary>
/// <remarks>
/// Format: <c>SCRAM-SHA-256$&lt;iterations&gt;:&lt;salt&gt;$&lt;StoredKey&gt;:&lt;ServerKey&gt;</c>, all base64.
/// PostgreSQL recognises a password literal in this form as already hashed and stores it as is.
/// The password must first go through SASLprep; for printable ASCII that is the identity, and
/// anything else is refused here rather than half-implementing the profile (a server and a client
/// that normalise differently would produce a verifier nobody can log in with).
/// </remarks>
internal static class ScramVerifier
{
    /// <summary>PostgreSQL's own default (<c>scram_iterations</c>).</summary>
    public const int DefaultIterations = 4096;

    public const int SaltLength = 16;

    private const int KeyLength = 32;

    /// <summary>Whether the password is one this class can hash (printable ASCII, so SASLprep leaves it unchanged).</summary>
    public static bool IsSupported(string password) => password.Length > 0 && password.All(c => c is >= ' ' and <= '~');

    /// <summary>A verifier with a fresh random 16-byte salt and 4096 iterations.</summary>
    /// <exception cref="ArgumentException">The password is not printable ASCII.</exception>
    public static string Create(string password)
    {
        Span<byte> salt = stackalloc byte[SaltLength];
        RandomNumberGenerator.Fill(salt);
        return Create(password, salt, DefaultIterations);
    }

    /// <exception cref="ArgumentException">The password is not printable ASCII.</exception>
    public static string Create(string password, ReadOnlySpan<byte> salt, int iterations)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        if (!IsSupported(password))
        {
            throw new ArgumentException("the password must be non-empty printable ASCII (SASLprep is not implemented)", nameof(password));
        }
        var passwordBytes = Encoding.ASCII.GetBytes(password);
        Span<byte> salted = stackalloc byte[KeyLength];
        Span<byte> clientKey = stackalloc byte[KeyLength];
        Span<byte> storedKey = stackalloc byte[KeyLength];
        Span<byte> serverKey = stackalloc byte[KeyLength];
        try
        {
            Rfc2898DeriveBytes.Pbkdf2(passwordBytes, salt, salted, iterations, HashAlgorithmName.SHA256);
            HMACSHA256.HashData(salted, "Client Key"u8, clientKey);
            SHA256.HashData(clientKey, storedKey);
            HMACSHA256.HashData(salted, "Server Key"u8, serverKey);
            return string.Create(CultureInfo.InvariantCulture,
                $"SCRAM-SHA-256${iterations}:{Convert.ToBase64String(salt)}${Convert.ToBase64String(storedKey)}:{Convert.ToBase64String(serverKey)}");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(passwordBytes);
            CryptographicOperations.ZeroMemory(salted);
            CryptographicOperations.ZeroMemory(clientKey);
        }
    }
}
