using System.Security.Cryptography;
using System.Text;
using Vault.Server.Auth;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Rotation;

/// <summary>
/// Where target records and their history are kept, and the one place that knows how: the
/// collections and keys, each record's seal, the encryption of its passwords, and the events
/// that tell the scheduler and watchers a record changed. Decides nothing about what may be
/// written: <see cref="TargetManager"/> and <see cref="RotationEngine"/> do.
/// </summary>
/// <remarks>
/// The layout is stored data: <see cref="Collections.RotationTargets"/> by target name,
/// <see cref="Collections.RotationHistory"/> by <c>name/NNNNNNNNNNNN</c>, passwords encrypted as
/// <c>rotation-target</c> records bound to <c>name#generation</c> and their serial. Changing any
/// of it makes existing data files unreadable.
/// </remarks>
public sealed class TargetRepository(IVaultStore store, SecurityBarrier barrier)
{
    /// <summary>How many history events a target keeps; an older one is deleted as a new one is written, so history cannot grow without bound.</summary>
    public const int MaxHistory = 1000;

    // The record kind a target's passwords are encrypted as (part of their associated data).
    private const string PasswordKind = "rotation-target";

    // Which targets manage which admin secret, as of _version (bumped before and after every write that may change it).
    private long _version;
    private ManagerIndex? _managers;

    /// <summary>
    /// Targets another node changed (this one a standby following it, <see cref="IVaultStore.ChangedElsewhere"/>):
    /// the index is rebuilt, and the scheduler plans again.
    /// </summary>
    public void OnChangedElsewhere(IReadOnlyCollection<(string Collection, string Id)> changed)
    {
        if (changed.Any(c => c.Collection == Collections.RotationTargets))
        {
            Interlocked.Increment(ref _version);
            Changed?.Invoke();
        }
    }

    /// <summary>Raised after a change that may move a due time, so the scheduler re-plans instead of sleeping past it.</summary>
    public event Action? Changed;

    /// <summary>Raised with a target's name after the credential applications should use changed, so watchers answer at once rather than on their next poll.</summary>
    public event Action<string>? CredentialChanged;

    /// <summary>The target; its seal is verified, so a record changed outside the vault is refused rather than used.</summary>
    /// <exception cref="NotFoundException">No such target.</exception>
    /// <exception cref="DataIntegrityException">The record fails its seal.</exception>
    public TargetRecord Get(string name)
    {
        PolicyStore.ValidateName(name);
        return Load(store, name) ?? throw new NotFoundException($"no target named '{name}'");
    }

    /// <summary>The target, or null; its seal is verified. Its name is checked as the field <c>target.name</c>, as callers handling a registration need.</summary>
    public TargetRecord? TryGet(string name)
    {
        PolicyStore.ValidateName(name, "target.name");
        return Load(store, name);
    }

    /// <summary>Every target, by name; records failing their seal are left out (and reported by <see cref="Get"/>), so one damaged record does not stop the scheduler or a listing.</summary>
    public IReadOnlyList<(string Name, TargetRecord Record)> List()
    {
        var result = new List<(string, TargetRecord)>();
        foreach (var (name, record) in store.List<TargetRecord>(Collections.RotationTargets, ""))
        {
            if (IsSealed(name, record))
            {
                result.Add((name, record));
            }
        }
        return result;
    }

    /// <summary>Newest first. The target itself is not checked: callers do, to answer NotFound.</summary>
    public IReadOnlyList<RotationEventRecord> History(string name, int limit) =>
        [.. store.List<RotationEventRecord>(Collections.RotationHistory, name + "/")
            .Select(e => e.Value)
            .OrderByDescending(e => e.Number)
            .Take(limit)];

    /// <summary>
    /// Runs <paramref name="work"/> as one unit of work that may add, change or delete targets,
    /// then raises <see cref="Changed"/>. The managers index is invalidated before the write too,
    /// so an index built while it commits is never published as current.
    /// </summary>
    public async Task<T> WriteAsync<T>(Func<IStoreWriter, T> work, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _version);
        var result = await store.WriteAsync(work, cancellationToken);
        NotifyChanged();
        return result;
    }

    /// <summary>The record inside a unit of work, or null; its seal is verified.</summary>
    internal TargetRecord? Load(IStoreReader reader, string name)
    {
        var record = reader.Get<TargetRecord>(Collections.RotationTargets, name);
        if (record is not null)
        {
            RecordSeal.Verify(Hmac, Collections.RotationTargets, name, record.Canonical(), record.Seal);
        }
        return record;
    }

    /// <summary>
    /// The record inside a unit of work without verifying its seal: only for deleting it, so a
    /// target whose record was damaged can still be removed.
    /// </summary>
    internal static TargetRecord? LoadUnverified(IStoreReader reader, string name) =>
        reader.Get<TargetRecord>(Collections.RotationTargets, name);

    /// <summary>Seals and writes the record; every change to a record goes through here, so none is stored unsealed.</summary>
    internal void Save(IStoreWriter tx, string name, TargetRecord record)
    {
        record.Seal = RecordSeal.Compute(Hmac, Collections.RotationTargets, name, record.Canonical());
        tx.Put(Collections.RotationTargets, name, record);
    }

    /// <summary>Deletes the record and its whole history: a target registered again later under the name starts with none.</summary>
    internal static void Delete(IStoreWriter tx, string name)
    {
        tx.Delete(Collections.RotationTargets, name);
        foreach (var (id, _) in tx.List<RotationEventRecord>(Collections.RotationHistory, name + "/"))
        {
            tx.Delete(Collections.RotationHistory, id);
        }
    }

    /// <summary>
    /// Encrypts a password for <paramref name="record"/> under a new serial, bound to the target's
    /// name and generation: a ciphertext copied to another target, or to a target registered again
    /// under the same name, does not decrypt.
    /// </summary>
    internal StoredPassword EncryptPassword(string name, TargetRecord record, string password)
    {
        var serial = ++record.SecretSerial;
        var bytes = Encoding.UTF8.GetBytes(password);
        try
        {
            var sealedValue = barrier.Encrypt(new RecordIdentity(PasswordKind, $"{name}#{record.Generation}", serial), bytes);
            return new StoredPassword { Serial = serial, KekVersion = sealedValue.KekVersion, WrappedDataKey = sealedValue.WrappedDataKey, Ciphertext = sealedValue.Ciphertext };
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    /// <summary>
    /// Decrypts every password of every target in <paramref name="reader"/> (a backup being
    /// verified) and forgets them; the count of values that decrypted.
    /// </summary>
    /// <exception cref="DataIntegrityException">A password does not decrypt.</exception>
    internal static long DecryptAll(IStoreReader reader, SecurityBarrier barrier)
    {
        long count = 0;
        foreach (var (name, record) in reader.List<TargetRecord>(Collections.RotationTargets, ""))
        {
            foreach (var stored in record.Passwords.Append(record.Previous).Append(record.Pending?.Password).OfType<StoredPassword>())
            {
                CryptographicOperations.ZeroMemory(barrier.Decrypt(new RecordIdentity(PasswordKind, $"{name}#{record.Generation}", stored.Serial), stored.ToSealed()));
                count++;
            }
        }
        return count;
    }

    /// <summary>The password <paramref name="stored"/> holds; the plaintext bytes are zeroed once it is a string.</summary>
    internal string DecryptPassword(string name, TargetRecord record, StoredPassword stored)
    {
        var bytes = barrier.Decrypt(new RecordIdentity(PasswordKind, $"{name}#{record.Generation}", stored.Serial), stored.ToSealed());
        try
        {
            return Encoding.UTF8.GetString(bytes);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    /// <summary>Writes a history event numbered after the record's last, and drops the one <see cref="MaxHistory"/> before it.</summary>
    internal static RotationEventRecord AppendEvent(IStoreWriter tx, string name, TargetRecord record, DateTimeOffset started, DateTimeOffset finished,
        string trigger, string outcome, string step, string reason, string account)
    {
        var entry = new RotationEventRecord
        {
            Number = record.NextEventId++,
            StartedAtUnixMs = started.ToUnixTimeMilliseconds(),
            FinishedAtUnixMs = finished.ToUnixTimeMilliseconds(),
            Trigger = trigger,
            Outcome = outcome,
            Step = step,
            Reason = reason,
            Version = record.Version,
            Account = account,
        };
        tx.Put(Collections.RotationHistory, EventId(name, entry.Number), entry);
        if (entry.Number > MaxHistory)
        {
            tx.Delete(Collections.RotationHistory, EventId(name, entry.Number - MaxHistory));
        }
        return entry;
    }

    /// <summary>
    /// The targets that rotate the admin credential stored at <paramref name="adminSecret"/> (a
    /// managed admin secret), from an index rebuilt only after a target is added, changed or
    /// deleted — not a scan of every target per rotation.
    /// </summary>
    public IReadOnlyList<string> ManagersOf(string adminSecret)
    {
        var version = Interlocked.Read(ref _version);
        var index = _managers;
        if (index is null || index.Version != version)
        {
            index = new ManagerIndex(version, List().Where(t => t.Record.ManagesAdminSecret).ToLookup(t => t.Record.AdminSecret, t => t.Name, StringComparer.Ordinal));
            // Published only if no change landed while it was built (a later call rebuilds).
            if (Interlocked.Read(ref _version) == version)
            {
                _managers = index;
            }
        }
        return [.. index.Managers[adminSecret]];
    }

    /// <summary>For writers that commit through the store themselves (the engine): a due time may have moved.</summary>
    internal void NotifyChanged()
    {
        Interlocked.Increment(ref _version);
        Changed?.Invoke();
    }

    /// <summary>The credential applications should use for <paramref name="name"/> changed.</summary>
    internal void NotifyCredentialChanged(string name) => CredentialChanged?.Invoke(name);

    private byte[] Hmac(string purpose, byte[] value) => barrier.Hmac(purpose, value);

    private static string EventId(string name, long id) => $"{name}/{id:D12}";

    private bool IsSealed(string name, TargetRecord record)
    {
        try
        {
            RecordSeal.Verify(Hmac, Collections.RotationTargets, name, record.Canonical(), record.Seal);
            return true;
        }
        catch (DataIntegrityException)
        {
            return false;
        }
    }

    private sealed record ManagerIndex(long Version, ILookup<string, string> Managers);
}
