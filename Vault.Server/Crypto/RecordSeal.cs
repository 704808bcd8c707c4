using System.Security.Cryptography;
using System.Text;
using Vault.Server.Storage;

namespace Vault.Server.Crypto;

/// <summary>
/// An HMAC over the fields of a stored record (token, policy, AppRole, target configuration,
/// lease, dynamic role, check-out set, audit anchor), keyed from the keyring. These records are
/// stored in plaintext because they hold nothing secret, but whoever can write the data file must
/// not be able to grant a token the root policy, widen a rule, point a target elsewhere or move a
/// lease's end: a record whose seal does not match is refused as damaged (DATA_LOSS).
/// <para>
/// A record's <c>Canonical()</c> lists the fields its seal covers. Every stored property is in it,
/// or marked <see cref="NotSealedAttribute"/> saying why; a test (RecordSealCoverageTests) fails
/// for a property that is neither, so a new field is never silently unprotected.
/// </para>
/// </summary>
internal static class RecordSeal
{
    private const string Purpose = "record-seal";

    public static byte[] Compute(Func<string, byte[], byte[]> hmac, string collection, string id, string canonical) =>
        hmac(Purpose, Encoding.UTF8.GetBytes($"{collection}\n{id}\n{canonical}"));

    /// <summary>Reads the record <paramref name="id"/> and verifies its seal; null when there is none.</summary>
    /// <exception cref="DataIntegrityException">The record was altered outside the vault.</exception>
    public static T? Read<T>(IStoreReader reader, Func<string, byte[], byte[]> hmac, string collection, string id, Func<T, string> canonical, Func<T, byte[]?> seal)
        where T : class
    {
        var record = reader.Get<T>(collection, id);
        return record is null ? null : Verified(hmac, collection, id, record, canonical(record), seal(record));
    }

    /// <summary><paramref name="record"/>, once its seal is verified.</summary>
    /// <exception cref="DataIntegrityException">The record was altered outside the vault.</exception>
    public static T Verified<T>(Func<string, byte[], byte[]> hmac, string collection, string id, T record, string canonical, byte[]? seal)
    {
        Verify(hmac, collection, id, canonical, seal);
        return record;
    }

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

/// <summary>
/// A stored property that a record's seal does not cover, on purpose: <paramref name="reason"/>
/// says why changing it in the data file cannot widen anyone's access.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class NotSealedAttribute(string reason) : Attribute
{
    public string Reason { get; } = reason;
}
