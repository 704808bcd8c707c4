using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Vault.Server.Crypto;
using Vault.Server.Idempotency;
using Vault.Server.Storage;

namespace Vault.Server.Secrets;

/// <summary>A decrypted secret version as handed to a caller.</summary>
public sealed record SecretValue(string Path, long Version, IReadOnlyDictionary<string, string> Data, DateTimeOffset CreatedAt, IReadOnlyDictionary<string, string> CustomMetadata);

/// <summary>
/// The versioned KV secrets engine: versions, check-and-set, soft delete, destroy, pruning.
/// Values cross the barrier here and nowhere else.
/// </summary>
public sealed class KvEngine(IVaultStore store, SecurityBarrier barrier, Usage.UsageTracker usage, TimeProvider clock, IOptions<KvOptions> options)
{
    public const string Kind = "kv";
    public const int DefaultMaxVersions = 10;

    // Relaxed escaping: the bytes never reach HTML, and escaping '<' or non-ASCII as \uXXXX
    // would let a value grow six-fold past the size limit on its way to the store.
    private static readonly SecretJson Json = new(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });

    public bool Exists(string path) => store.Get<SecretMetadataRecord>(Collections.SecretMetadata, path) is not null;

    public Task<(long Version, DateTimeOffset CreatedAt)> PutAsync(string path, IReadOnlyDictionary<string, string> data, ulong? cas, CancellationToken cancellationToken)
    {
        SecretValidation.Path(path);
        SecretValidation.Data(data, options.Value.MaxSecretBytes);
        var plaintext = Serialize(data);
        if (plaintext.WrittenSpan.Length > 2 * options.Value.MaxSecretBytes + 64 * 1024)
        {
            plaintext.Dispose();
            throw new ValidationException("data", $"is larger than the limit of {options.Value.MaxSecretBytes} bytes once encoded");
        }
        // A client's repeat of a keyed put is given the version it made, and makes none.
        return WriteAndZero(plaintext, IdempotentCall.Once(tx => PutWithin(tx, path, plaintext.WrittenSpan, cas), SecretJson.Default.ValueTupleInt64DateTimeOffset), cancellationToken);
    }

    /// <summary>The value as JSON in a pooled buffer that is zeroed when disposed.</summary>
    private static PlaintextBuffer Serialize(IReadOnlyDictionary<string, string> data)
    {
        // Sized for the usual case (ASCII, little escaping) so that one rental holds it.
        long estimate = 16;
        foreach (var (key, value) in data)
        {
            estimate += key.Length + value.Length + 8;
        }
        var buffer = new PlaintextBuffer((int)Math.Min(estimate, Array.MaxLength));
        try
        {
            using var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = Json.Options.Encoder, SkipValidation = true });
            JsonSerializer.Serialize(writer, data, Json.IReadOnlyDictionaryStringString);
            return buffer;
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes a new version inside the caller's unit of work, so another record can change in the
    /// same commit (a rotation target publishing its verified password to its admin secret).
    /// </summary>
    /// <param name="expectedVersion">The version the caller read; a different current version is a <see cref="VersionConflictException"/> (so cas_required never refuses it).</param>
    internal (long Version, DateTimeOffset CreatedAt) PutWithin(IStoreWriter tx, string path, IReadOnlyDictionary<string, string> data, ulong expectedVersion)
    {
        SecretValidation.Path(path);
        using var plaintext = Serialize(data);
        return PutWithin(tx, path, plaintext.WrittenSpan, cas: expectedVersion);
    }

    private (long Version, DateTimeOffset CreatedAt) PutWithin(IStoreWriter tx, string path, ReadOnlySpan<byte> plaintext, ulong? cas)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var meta = tx.Get<SecretMetadataRecord>(Collections.SecretMetadata, path)
            ?? new SecretMetadataRecord { MaxVersions = DefaultMaxVersions, CreatedAtUnixMs = now, Generation = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)) };
        if (cas is null && meta.CasRequired)
        {
            throw new ValidationException("cas", "this path requires check-and-set");
        }
        if (cas is { } expected && (ulong)meta.CurrentVersion != expected)
        {
            throw new VersionConflictException($"check-and-set failed: expected version {expected}, current version is {meta.CurrentVersion}");
        }
        var version = meta.CurrentVersion + 1;
        var sealedValue = barrier.Encrypt(Identity(path, meta, version), plaintext);
        tx.Put(Collections.SecretVersions, VersionId(path, version), new SecretVersionRecord
        {
            KekVersion = sealedValue.KekVersion,
            WrappedDataKey = sealedValue.WrappedDataKey,
            Ciphertext = sealedValue.Ciphertext,
        });
        meta.CurrentVersion = version;
        meta.UpdatedAtUnixMs = now;
        meta.Versions.Add(new SecretVersionEntry { Version = version, CreatedAtUnixMs = now });
        Prune(tx, path, meta);
        tx.Put(Collections.SecretMetadata, path, meta);
        return (version, DateTimeOffset.FromUnixTimeMilliseconds(now));
    }

    public SecretValue Get(string path, ulong version)
    {
        SecretValidation.Path(path);
        var meta = RequireMetadata(path);
        if (version > long.MaxValue)
        {
            throw new ValidationException("version", "is out of range");
        }
        var wanted = version == 0 ? meta.CurrentVersion : (long)version;
        var entry = meta.Versions.Find(v => v.Version == wanted)
            ?? throw new NotFoundException($"version {wanted} of '{path}' does not exist");
        if (entry.Destroyed)
        {
            throw new NotFoundException($"version {wanted} of '{path}' is destroyed");
        }
        if (entry.DeletedAtUnixMs is not null)
        {
            throw new NotFoundException($"version {wanted} of '{path}' is deleted");
        }
        var record = store.Get<SecretVersionRecord>(Collections.SecretVersions, VersionId(path, wanted));
        if (record is null)
        {
            // Pruned, destroyed or deleted between the two reads: say so; only a version the
            // metadata still lists as live and whose record is gone is damage.
            var now = store.Get<SecretMetadataRecord>(Collections.SecretMetadata, path)?.Versions.Find(v => v.Version == wanted);
            if (now is null || now.Destroyed)
            {
                throw new NotFoundException($"version {wanted} of '{path}' does not exist");
            }
            throw new DataIntegrityException($"version {wanted} of '{path}' is missing from storage");
        }
        var plaintext = barrier.Decrypt(Identity(path, meta, wanted), new SealedValue(record.KekVersion, record.WrappedDataKey, record.Ciphertext));
        try
        {
            var data = JsonSerializer.Deserialize(plaintext, Json.DictionaryStringString)
                ?? throw new DataIntegrityException($"version {wanted} of '{path}' is empty");
            usage.Used(Usage.UsageKind.Secret, path);
            return new SecretValue(path, wanted, data, DateTimeOffset.FromUnixTimeMilliseconds(entry.CreatedAtUnixMs), meta.CustomMetadata);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    /// <summary>Every secret whose current version can be read, with its metadata (for reports).</summary>
    public IReadOnlyList<(string Path, SecretMetadataRecord Metadata)> ListReadable() =>
        store.List<SecretMetadataRecord>(Collections.SecretMetadata, "")
            .Where(entry => entry.Value.Versions.Find(v => v.Version == entry.Value.CurrentVersion) is { Destroyed: false, DeletedAtUnixMs: null })
            .Select(entry => (entry.Key, entry.Value))
            .ToList();

    /// <summary>Keys directly under <paramref name="prefix"/>; deeper paths appear as folders ending in '/'.</summary>
    public IReadOnlyList<string> List(string prefix)
    {
        var normalized = SecretValidation.Prefix(prefix);
        var keys = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (path, _) in store.List<SecretMetadataRecord>(Collections.SecretMetadata, normalized))
        {
            var rest = path[normalized.Length..];
            var slash = rest.IndexOf('/', StringComparison.Ordinal);
            keys.Add(slash < 0 ? rest : rest[..(slash + 1)]);
        }
        return keys.ToList();
    }

    public Task<IReadOnlyList<long>> DeleteAsync(string path, IReadOnlyList<ulong> versions, CancellationToken cancellationToken) =>
        ChangeVersionsAsync(path, versions, defaultToLatest: true, (tx, meta, entry, now) => entry.DeletedAtUnixMs ??= now, cancellationToken);

    public Task<IReadOnlyList<long>> UndeleteAsync(string path, IReadOnlyList<ulong> versions, CancellationToken cancellationToken) =>
        ChangeVersionsAsync(path, versions, defaultToLatest: false, (tx, meta, entry, now) =>
        {
            if (entry.Destroyed)
            {
                throw new PreconditionException($"version {entry.Version} of '{path}' is destroyed and cannot be undeleted");
            }
            entry.DeletedAtUnixMs = null;
        }, cancellationToken);

    public Task<IReadOnlyList<long>> DestroyAsync(string path, IReadOnlyList<ulong> versions, CancellationToken cancellationToken) =>
        ChangeVersionsAsync(path, versions, defaultToLatest: false, (tx, meta, entry, now) =>
        {
            entry.Destroyed = true;
            entry.DeletedAtUnixMs ??= now;
            tx.Delete(Collections.SecretVersions, VersionId(path, entry.Version));
        }, cancellationToken);

    public (string Path, SecretMetadataRecord Metadata) GetMetadata(string path)
    {
        SecretValidation.Path(path);
        return (path, RequireMetadata(path));
    }

    public Task<SecretMetadataRecord> UpdateMetadataAsync(string path, uint? maxVersions, bool? casRequired, IReadOnlyDictionary<string, string>? customMetadata, CancellationToken cancellationToken)
    {
        SecretValidation.Path(path);
        int? max = maxVersions is { } m ? SecretValidation.MaxVersions(m) : null;
        if (customMetadata is not null)
        {
            SecretValidation.CustomMetadata(customMetadata);
        }
        return store.WriteAsync(tx =>
        {
            var meta = tx.Get<SecretMetadataRecord>(Collections.SecretMetadata, path)
                ?? throw new NotFoundException($"no secret at '{path}'");
            if (max is { } newMax)
            {
                meta.MaxVersions = newMax;
            }
            if (casRequired is { } cas)
            {
                meta.CasRequired = cas;
            }
            if (customMetadata is not null)
            {
                meta.CustomMetadata = new Dictionary<string, string>(customMetadata);
            }
            meta.UpdatedAtUnixMs = clock.GetUtcNow().ToUnixTimeMilliseconds();
            Prune(tx, path, meta);
            tx.Put(Collections.SecretMetadata, path, meta);
            return meta;
        }, cancellationToken);
    }

    public Task DeleteMetadataAsync(string path, CancellationToken cancellationToken)
    {
        SecretValidation.Path(path);
        return store.WriteAsync(tx =>
        {
            var meta = tx.Get<SecretMetadataRecord>(Collections.SecretMetadata, path)
                ?? throw new NotFoundException($"no secret at '{path}'");
            foreach (var entry in meta.Versions)
            {
                tx.Delete(Collections.SecretVersions, VersionId(path, entry.Version));
            }
            tx.Delete(Collections.SecretMetadata, path);
            return true;
        }, cancellationToken);
    }

    /// <summary>Ids of the version records still wrapped under a KEK older than the newest (one scan).</summary>
    public IReadOnlyList<string> StaleVersionIds()
    {
        var current = barrier.CurrentKeyVersion;
        return store.List<SecretVersionRecord>(Collections.SecretVersions, "")
            .Where(r => r.Value.KekVersion != current)
            .Select(r => r.Key)
            .ToList();
    }

    /// <summary>Re-wraps the given version records to the newest KEK in one unit of work.</summary>
    /// <returns>The ids that could not be re-wrapped (their wrapped key failed authentication).</returns>
    public Task<IReadOnlyList<string>> RewrapAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken) =>
        store.WriteAsync<IReadOnlyList<string>>(tx =>
        {
            var failed = new List<string>();
            foreach (var id in ids)
            {
                var record = tx.Get<SecretVersionRecord>(Collections.SecretVersions, id);
                if (record is null)
                {
                    continue;
                }
                var (path, version) = ParseVersionId(id);
                var meta = tx.Get<SecretMetadataRecord>(Collections.SecretMetadata, path);
                if (meta is null)
                {
                    continue;
                }
                try
                {
                    var rewrapped = barrier.Rewrap(Identity(path, meta, version), new SealedValue(record.KekVersion, record.WrappedDataKey, record.Ciphertext));
                    record.KekVersion = rewrapped.KekVersion;
                    record.WrappedDataKey = rewrapped.WrappedDataKey;
                    tx.Put(Collections.SecretVersions, id, record);
                }
                catch (DataIntegrityException)
                {
                    // A damaged record stays as it is (reads of it answer DATA_LOSS); it must not
                    // stop every other record from moving to the new key.
                    failed.Add(id);
                }
            }
            return failed;
        }, cancellationToken);

    /// <summary>
    /// A version's identity for the barrier. The path's generation (random, new each time the path
    /// is created) is part of it, so a record saved before a DeleteMetadata cannot be put back
    /// under the re-created path and read.
    /// </summary>
    private static RecordIdentity Identity(string path, SecretMetadataRecord meta, long version) => new(Kind, $"{path}#{meta.Generation}", version);

    /// <summary>
    /// Decrypts every stored version of every secret in <paramref name="reader"/> (a backup being
    /// verified) and forgets the plaintext; the count of values that decrypted.
    /// </summary>
    /// <exception cref="DataIntegrityException">A version listed as stored is missing, or does not decrypt.</exception>
    internal static long DecryptAll(IStoreReader reader, SecurityBarrier barrier)
    {
        long count = 0;
        foreach (var (path, meta) in reader.List<SecretMetadataRecord>(Collections.SecretMetadata, ""))
        {
            foreach (var entry in meta.Versions.Where(v => !v.Destroyed))
            {
                var record = reader.Get<SecretVersionRecord>(Collections.SecretVersions, VersionId(path, entry.Version))
                    ?? throw new DataIntegrityException($"a kv_versions record is missing (version {entry.Version} of a secret)");
                System.Security.Cryptography.CryptographicOperations.ZeroMemory(
                    barrier.Decrypt(Identity(path, meta, entry.Version), new SealedValue(record.KekVersion, record.WrappedDataKey, record.Ciphertext)));
                count++;
            }
        }
        return count;
    }

    internal static string VersionId(string path, long version) => $"{path}\n{version:D20}";

    private static (string Path, long Version) ParseVersionId(string id)
    {
        var split = id.LastIndexOf('\n');
        return (id[..split], long.Parse(id.AsSpan(split + 1), System.Globalization.CultureInfo.InvariantCulture));
    }

    // Mapped per read, not kept with GetDerived: a kept record would hold a second copy of every
    // secret's ciphertext beside the cache's bytes, which at 100,000 secrets is what the memory
    // budget cannot afford.
    private SecretMetadataRecord RequireMetadata(string path) =>
        store.Get<SecretMetadataRecord>(Collections.SecretMetadata, path) ?? throw new NotFoundException($"no secret at '{path}'");

    private Task<IReadOnlyList<long>> ChangeVersionsAsync(string path, IReadOnlyList<ulong> versions, bool defaultToLatest,
        Action<IStoreWriter, SecretMetadataRecord, SecretVersionEntry, long> change, CancellationToken cancellationToken)
    {
        SecretValidation.Path(path);
        if (versions.Count == 0 && !defaultToLatest)
        {
            throw new ValidationException("versions", "name at least one version");
        }
        if (versions.Any(v => v == 0 || v > long.MaxValue))
        {
            throw new ValidationException("versions", "versions start at 1 and must be in range");
        }
        if (versions.Count > SecretValidation.MaxVersionsLimit)
        {
            throw new ValidationException("versions", $"name at most {SecretValidation.MaxVersionsLimit} versions");
        }
        return store.WriteAsync(IdempotentCall.Once<IReadOnlyList<long>>(tx =>
        {
            var meta = tx.Get<SecretMetadataRecord>(Collections.SecretMetadata, path)
                ?? throw new NotFoundException($"no secret at '{path}'");
            var wanted = versions.Count == 0 ? [meta.CurrentVersion] : versions.Select(v => (long)v).Distinct().ToList();
            var entries = wanted.Select(v => meta.Versions.Find(e => e.Version == v)
                ?? throw new NotFoundException($"version {v} of '{path}' does not exist")).ToList();
            var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
            foreach (var entry in entries)
            {
                change(tx, meta, entry, now);
            }
            meta.UpdatedAtUnixMs = now;
            tx.Put(Collections.SecretMetadata, path, meta);
            return wanted;
        }, SecretJson.Default.IReadOnlyListInt64), cancellationToken);
    }

    private static void Prune(IStoreWriter tx, string path, SecretMetadataRecord meta)
    {
        while (meta.Versions.Count > meta.MaxVersions)
        {
            var oldest = meta.Versions[0];
            tx.Delete(Collections.SecretVersions, VersionId(path, oldest.Version));
            meta.Versions.RemoveAt(0);
        }
    }

    private async Task<T> WriteAndZero<T>(PlaintextBuffer plaintext, Func<IStoreWriter, T> work, CancellationToken cancellationToken)
    {
        try
        {
            return await store.WriteAsync(work, cancellationToken);
        }
        finally
        {
            plaintext.Dispose();
        }
    }
}

// Fields: a put's answer is a tuple (version, time), recorded for a client's repeat of it.
[System.Text.Json.Serialization.JsonSourceGenerationOptions(IncludeFields = true)]
[System.Text.Json.Serialization.JsonSerializable(typeof(IReadOnlyDictionary<string, string>))]
[System.Text.Json.Serialization.JsonSerializable(typeof((long Version, DateTimeOffset CreatedAt)))]
[System.Text.Json.Serialization.JsonSerializable(typeof(IReadOnlyList<long>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class SecretJson : System.Text.Json.Serialization.JsonSerializerContext;
