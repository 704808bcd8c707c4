using System.Security.Cryptography;
using System.Text;

namespace Vault.Server.Auth;

/// <summary>
/// An HMAC over the fields of an authorisation record (token, policy), keyed from the keyring.
/// These records are stored in plaintext because they hold nothing secret, but whoever can
/// write the data file must not be able to grant a token the root policy or widen a rule:
/// a record whose seal does not match is refused as damaged (DATA_LOSS).
/// </summary>
internal static class RecordSeal
{
    private const string Purpose = "record-seal";

    public static byte[] Compute(Func<string, byte[], byte[]> hmac, string collection, string id, string canonical) =>
        hmac(Purpose, Encoding.UTF8.GetBytes($"{collection}\n{id}\n{canonical}"));

    /// <exception cref="DataIntegrityException">The record was altered outside the vault.</exception>
    public static void Verify(Func<string, byte[], byte[]> hmac, string collection, string id, string canonical, byte[]? seal)
    {
        var expected = Compute(hmac, collection, id, canonical);
        if (seal is null || !CryptographicOperations.FixedTimeEquals(expected, seal))
        {
            throw new DataIntegrityException($"a {collection} record failed its integrity check");
        }
    }
}
