using System.Security.Cryptography;
using System.Text;

namespace Vault.Rotators.MySql;

/// <summary>
/// The <c>mysql_native_password</c> hash, <c>'*' + HEX(SHA1(SHA1(password)))</c>: what
/// <c>PASSWORD('...')</c> returns and what <c>IDENTIFIED BY PASSWORD '...'</c> accepts, so the
/// plaintext need not be in the statement.
/// </summary>
/// <remarks>
/// The password is hashed as UTF-8, the connection character set MySqlConnector uses (utf8mb4) and
/// the bytes it sends when logging in.
/// </remarks>
internal static class NativePasswordHash
{
    public static string Compute(string password)
    {
        ArgumentNullException.ThrowIfNull(password);
        var bytes = Encoding.UTF8.GetBytes(password);
        Span<byte> once = stackalloc byte[SHA1.HashSizeInBytes];
        Span<byte> twice = stackalloc byte[SHA1.HashSizeInBytes];
        try
        {
#pragma warning disable CA5350 // SHA-1 is what mysql_native_password is defined with.
            SHA1.HashData(bytes, once);
            SHA1.HashData(once, twice);
#pragma warning restore CA5350
            return "*" + Convert.ToHexString(twice);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
            CryptographicOperations.ZeroMemory(once);
        }
    }
}
