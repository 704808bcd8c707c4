using System.Reflection;
using Vault.Server.Crypto;
using Vault.Server.Identity;
using Vault.Server.Rotation;
using Vault.Server.Secrets;
using Vault.Server.Storage;

namespace Vault.Server.Backup;

/// <summary>
/// Every record of a backup being verified, checked with its keyring: each record that carries a
/// seal verifies as one of the vault's sealed record types (tokens, policies, roles, targets,
/// leases, the audit anchor, …; found by their <c>Seal</c> and <c>Canonical()</c>, as
/// RecordSealCoverageTests finds them), and each encrypted value — KV versions, target
/// passwords, TOTP secrets — decrypts under its record's identity. Plaintext is zeroed at once.
/// </summary>
internal static class BackupRecordCheck
{
    private const string SealField = "Seal";

    private static readonly (Type Type, MethodInfo Canonical, PropertyInfo Seal)[] SealedTypes =
        typeof(RecordSeal).Assembly.GetTypes()
            .Select(t => (Type: t, Canonical: t.GetMethod("Canonical", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic, Type.EmptyTypes), Seal: t.GetProperty(SealField)))
            .Where(t => t.Canonical?.ReturnType == typeof(string) && t.Seal?.PropertyType == typeof(byte[]) && !t.Type.IsAbstract)
            .Select(t => (t.Type, t.Canonical!, t.Seal!))
            .ToArray();

    /// <returns>How many seals verified, and how many values decrypted.</returns>
    /// <exception cref="InvalidBackupException">A record fails its seal, or a value does not decrypt.</exception>
    public static (long Sealed, long Decrypted) Run(IStoreReader store, SecurityBarrier barrier, StoreSnapshot snapshot)
    {
        long sealedCount = 0;
        Func<string, byte[], byte[]> hmac = (purpose, value) => barrier.Hmac(purpose, value);
        foreach (var document in snapshot.Documents)
        {
            if (!LiteDbStore.HasField(document.Bson, SealField))
            {
                continue;
            }
            if (!SealedTypes.Any(t => Verifies(t, document, hmac)))
            {
                throw new InvalidBackupException($"a {document.Collection} record in the backup fails its seal: it was altered before the backup was taken");
            }
            sealedCount++;
        }
        try
        {
            var decrypted = KvEngine.DecryptAll(store, barrier) + TargetRepository.DecryptAll(store, barrier) + MfaManager.DecryptAll(store, barrier)
                + Idempotency.IdempotentWrites.DecryptAll(store, barrier);
            return (sealedCount, decrypted);
        }
        catch (DataIntegrityException ex)
        {
            throw new InvalidBackupException($"a value in the backup does not decrypt ({ex.Message})");
        }
    }

    private static bool Verifies((Type Type, MethodInfo Canonical, PropertyInfo Seal) sealedType, StoredDocument document, Func<string, byte[], byte[]> hmac)
    {
        try
        {
            var record = LiteDbStore.FromBson(sealedType.Type, document.Bson);
            RecordSeal.Verify(hmac, document.Collection, document.Id, (string)sealedType.Canonical.Invoke(record, null)!, (byte[]?)sealedType.Seal.GetValue(record));
            return true;
        }
        catch (Exception ex) when (ex is DataIntegrityException or TargetInvocationException or LiteDB.LiteException or InvalidCastException or FormatException or ArgumentException or NullReferenceException)
        {
            // Not this type (or not intact): the next.
            return false;
        }
    }
}
