using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Vault.Server.Storage;

namespace Vault.Server.Crypto;

/// <summary>
/// The cryptographic barrier: everything written to the store passes through it encrypted,
/// and nothing can be read while it is sealed. Holds the keyring and the unseal key in memory
/// only while unsealed; sealing zeroes both.
/// </summary>
public sealed partial class SecurityBarrier(IVaultStore store, TimeProvider clock, ILogger<SecurityBarrier> logger) : IDisposable
{
    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    // Held for reading while keys are in use, for writing while they are swapped or zeroed,
    // so a seal never zeroes a key under an encryption in flight.
    private readonly ReaderWriterLockSlim _keyUse = new();
    private volatile UnsealedState? _state;

    /// <summary>Raised after every seal or unseal, with the new sealed flag.</summary>
    public event Action<bool>? SealStateChanged;

    public bool IsInitialized => store.Get<KeyringRecord>(Collections.System, KeyringRecord.Id) is not null;

    public bool IsSealed => _state is null;

    public int CurrentKeyVersion => _state?.Keyring.CurrentVersion ?? 0;

    /// <summary>The Argon2id parameters of the stored keyring; null while the vault is not initialised.</summary>
    public KdfParameters? StoredKdf => store.Get<KeyringRecord>(Collections.System, KeyringRecord.Id) is { SecretShares: 0 } record ? record.Kdf : null;

    private readonly ShareQuorum _unsealShares = new(clock);

    /// <summary>With key shares: how many were made and how many unseal; null in passphrase mode (or before init).</summary>
    public (int Shares, int Threshold)? ShareConfig =>
        store.Get<KeyringRecord>(Collections.System, KeyringRecord.Id) is { SecretShares: > 0 } record ? (record.SecretShares, record.SecretThreshold) : null;

    /// <summary>Shares given towards the next unseal (kept in memory only, until the threshold, a reset or <see cref="ShareQuorum.Timeout"/>).</summary>
    public int UnsealProgress
    {
        get
        {
            var count = _unsealShares.Count(out var expired);
            if (expired)
            {
                BarrierLog.UnsealProgressExpired(logger, ShareQuorum.Timeout);
            }
            return count;
        }
    }

    /// <summary>Forgets the shares given so far.</summary>
    public void ResetUnsealProgress() => _unsealShares.Reset();

    /// <summary>Creates the keyring and leaves the vault unsealed.</summary>
    /// <exception cref="PreconditionException">The vault is already initialised.</exception>
    /// <param name="alsoWrite">Writes that must land in the same unit of work as the keyring (the
    /// root token), given an HMAC function keyed from the new keyring: init either happens whole
    /// or not at all.</param>
    public async Task InitializeAsync(string passphrase, KdfParameters kdf, Action<IStoreWriter, Func<string, byte[], byte[]>>? alsoWrite, CancellationToken cancellationToken)
    {
        ValidatePassphrase(passphrase);
        kdf.Validate();
        await _lifecycle.WaitAsync(cancellationToken);
        try
        {
            if (IsInitialized)
            {
                throw new PreconditionException("vault is already initialized");
            }
            var salt = UnsealKeyDerivation.NewSalt();
            var unsealKey = await Task.Run(() => UnsealKeyDerivation.Derive(passphrase, salt, kdf), cancellationToken);
            await InitializeLockedAsync(unsealKey, new KeyringRecord { Salt = salt, MemoryKib = kdf.MemoryKib, Iterations = kdf.Iterations, Parallelism = kdf.Parallelism }, alsoWrite);
            BarrierLog.Initialized(logger, kdf.MemoryKib, kdf.Iterations, kdf.Parallelism);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>
    /// Creates the keyring under a random unseal key split into <paramref name="shares"/> key shares
    /// (Shamir), any <paramref name="threshold"/> of which unseal, and leaves the vault unsealed.
    /// </summary>
    /// <returns>The shares, to be handed out (they are not kept).</returns>
    /// <exception cref="PreconditionException">The vault is already initialised.</exception>
    /// <exception cref="ValidationException">Not 2 ≤ threshold ≤ shares ≤ 255.</exception>
    public async Task<byte[][]> InitializeWithSharesAsync(int shares, int threshold, Action<IStoreWriter, Func<string, byte[], byte[]>>? alsoWrite, CancellationToken cancellationToken)
    {
        if (shares < 2 || shares > Shamir.MaxParts)
        {
            throw new ValidationException("secret_shares", $"must be 2 to {Shamir.MaxParts}");
        }
        if (threshold < 2 || threshold > shares)
        {
            throw new ValidationException("secret_threshold", $"must be 2 to secret_shares ({shares})");
        }
        await _lifecycle.WaitAsync(cancellationToken);
        try
        {
            if (IsInitialized)
            {
                throw new PreconditionException("vault is already initialized");
            }
            var unsealKey = RandomNumberGenerator.GetBytes(32);
            var split = Shamir.Split(unsealKey, shares, threshold);
            await InitializeLockedAsync(unsealKey, new KeyringRecord { SecretShares = shares, SecretThreshold = threshold }, alsoWrite);
            BarrierLog.InitializedWithShares(logger, shares, threshold);
            return split;
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>The keyring under <paramref name="unsealKey"/> (owned from here), and whatever else init writes, in one unit of work.</summary>
    private async Task InitializeLockedAsync(byte[] unsealKey, KeyringRecord record, Action<IStoreWriter, Func<string, byte[], byte[]>>? alsoWrite)
    {
        {
            var keyring = Keyring.CreateNew();
            var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
            record.KeyVersion = keyring.CurrentVersion;
            record.CreatedAtUnixMs = now;
            record.KeyRotatedAtUnixMs = now;
            record.WrappedKeyring = WrapKeyring(unsealKey, keyring, record);
            try
            {
                // Past the key derivation, a client giving up must not leave half an init behind.
                await store.WriteAsync(tx =>
                {
                    if (tx.Get<KeyringRecord>(Collections.System, KeyringRecord.Id) is not null)
                    {
                        throw new PreconditionException("vault is already initialized");
                    }
                    tx.Put(Collections.System, KeyringRecord.Id, record);
                    alsoWrite?.Invoke(tx, (purpose, value) =>
                    {
                        var key = keyring.DeriveHmacKey(purpose);
                        try
                        {
                            return HMACSHA256.HashData(key, value);
                        }
                        finally
                        {
                            CryptographicOperations.ZeroMemory(key);
                        }
                    });
                    return true;
                }, CancellationToken.None);
            }
            catch
            {
                CryptographicOperations.ZeroMemory(unsealKey);
                keyring.Dispose();
                throw;
            }
            SetState(new UnsealedState(unsealKey, keyring));
        }
    }

    /// <exception cref="PreconditionException">The vault is not initialised.</exception>
    /// <exception cref="UnauthenticatedException">The passphrase does not unwrap the keyring.</exception>
    public async Task UnsealAsync(string passphrase, CancellationToken cancellationToken)
    {
        ValidatePassphrase(passphrase);
        await _lifecycle.WaitAsync(cancellationToken);
        try
        {
            if (!IsSealed)
            {
                return;
            }
            var record = store.Get<KeyringRecord>(Collections.System, KeyringRecord.Id)
                ?? throw new PreconditionException("vault is not initialized");
            if (record.SecretShares > 0)
            {
                throw new ValidationException("passphrase", $"this vault unseals with key shares ({record.SecretThreshold} of {record.SecretShares}): give a share, not a passphrase");
            }
            // A tampered record must not make us allocate without bound.
            record.Kdf.Validate();
            var unsealKey = await Task.Run(() => UnsealKeyDerivation.Derive(passphrase, record.Salt, record.Kdf), cancellationToken);
            OpenKeyring(unsealKey, record, "unseal failed: wrong passphrase (or a damaged keyring); the vault stays sealed");
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>
    /// Gives one key share towards unsealing. Shares are kept in memory until the threshold is
    /// reached; then they are combined and the result must open the keyring, or every share given
    /// is forgotten and the vault stays sealed.
    /// </summary>
    /// <returns>Whether the vault is unsealed now.</returns>
    /// <exception cref="PreconditionException">Not initialised.</exception>
    /// <exception cref="ValidationException">A passphrase vault; a share of the wrong length; the same share again.</exception>
    /// <exception cref="UnauthenticatedException">The threshold was reached and the shares do not open the keyring.</exception>
    public async Task<bool> UnsealWithShareAsync(byte[] share, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(share);
        await _lifecycle.WaitAsync(cancellationToken);
        try
        {
            if (!IsSealed)
            {
                return true;
            }
            var record = store.Get<KeyringRecord>(Collections.System, KeyringRecord.Id)
                ?? throw new PreconditionException("vault is not initialized");
            if (record.SecretShares == 0)
            {
                throw new ValidationException("share", "this vault unseals with a passphrase, not key shares");
            }
            _ = UnsealProgress; // drops (and logs) shares that waited too long
            if (_unsealShares.Add(share, record.SecretThreshold) is not { } quorum)
            {
                return false;
            }
            var unsealKey = ShareQuorum.Combine(quorum);
            OpenKeyring(unsealKey, record,
                "unseal failed: the shares given do not open the keyring (one is wrong, damaged, of another vault, or from before a rekey); the vault stays sealed and the shares must be given again");
            return true;
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Unwraps the keyring with <paramref name="unsealKey"/> (owned from here) and unseals, or refuses with <paramref name="refusal"/>.</summary>
    private void OpenKeyring(byte[] unsealKey, KeyringRecord record, string refusal)
    {
        byte[] plain;
        try
        {
            plain = Aead.Open(unsealKey, record.WrappedKeyring, record.AssociatedData());
        }
        catch (DataIntegrityException)
        {
            CryptographicOperations.ZeroMemory(unsealKey);
            BarrierLog.UnsealRefused(logger);
            throw new UnauthenticatedException(refusal);
        }
        try
        {
            SetState(new UnsealedState(unsealKey, Keyring.Deserialize(plain)));
        }
        catch
        {
            CryptographicOperations.ZeroMemory(unsealKey);
            throw;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plain);
        }
        BarrierLog.Unsealed(logger, CurrentKeyVersion);
    }

    /// <summary>
    /// Whether <paramref name="unsealKey"/> is this vault's unseal key: it opens the stored keyring
    /// (for generating a root token with the passphrase or a quorum of shares). The key is zeroed.
    /// </summary>
    public bool OpensKeyring(byte[] unsealKey)
    {
        try
        {
            var record = store.Get<KeyringRecord>(Collections.System, KeyringRecord.Id) ?? throw new PreconditionException("vault is not initialized");
            var plain = Aead.Open(unsealKey, record.WrappedKeyring, record.AssociatedData());
            CryptographicOperations.ZeroMemory(plain);
            return true;
        }
        catch (DataIntegrityException)
        {
            return false;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(unsealKey);
        }
    }

    /// <summary>The unseal key the passphrase derives (passphrase mode), to be checked with <see cref="OpensKeyring"/>.</summary>
    /// <exception cref="ValidationException">A key-share vault, or a passphrase out of bounds.</exception>
    public async Task<byte[]> DeriveUnsealKeyAsync(string passphrase, CancellationToken cancellationToken)
    {
        ValidatePassphrase(passphrase);
        var record = store.Get<KeyringRecord>(Collections.System, KeyringRecord.Id) ?? throw new PreconditionException("vault is not initialized");
        if (record.SecretShares > 0)
        {
            throw new ValidationException("passphrase", $"this vault uses key shares ({record.SecretThreshold} of {record.SecretShares}): give shares, not a passphrase");
        }
        record.Kdf.Validate();
        return await Task.Run(() => UnsealKeyDerivation.Derive(passphrase, record.Salt, record.Kdf), cancellationToken);
    }

    /// <summary>
    /// Another node changed the stored keyring (this one is a standby following it): a rotated key
    /// is opened with the unseal key this node holds, so what the active writes under it reads
    /// here too. A keyring this node's unseal key no longer opens (the passphrase or the shares
    /// changed) seals this node: it is unsealed again with the new ones.
    /// </summary>
    public void OnChangedElsewhere(IReadOnlyCollection<(string Collection, string Id)> changed)
    {
        if (changed.Contains((Collections.System, KeyringRecord.Id)))
        {
            FollowKeyring(Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Opens the stored keyring again if it moved on (see <see cref="OnChangedElsewhere"/>).</summary>
    /// <param name="wait">How long to wait for an unseal, seal or key change in progress (a damaged record's version must not hang a read).</param>
    private void FollowKeyring(TimeSpan wait)
    {
        if (!_lifecycle.Wait(wait))
        {
            return;
        }
        try
        {
            if (_state is not { } state || store.Get<KeyringRecord>(Collections.System, KeyringRecord.Id) is not { } record)
            {
                return;
            }
            byte[] plain;
            try
            {
                plain = Aead.Open(state.UnsealKey, record.WrappedKeyring, record.AssociatedData());
            }
            catch (DataIntegrityException)
            {
                SetState(null);
                BarrierLog.SealedByNewKeyring(logger);
                return;
            }
            try
            {
                var keyring = Keyring.Deserialize(plain);
                if (keyring.CurrentVersion == state.Keyring.CurrentVersion)
                {
                    keyring.Dispose();
                    return;
                }
                SetState(new UnsealedState(state.UnsealKey, keyring), disposePrevious: false);
                state.DisposeKeysButNotUnsealKey();
                BarrierLog.KeyringFollowed(logger, keyring.CurrentVersion);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(plain);
            }
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    public void Seal()
    {
        _lifecycle.Wait();
        try
        {
            SetState(null);
        }
        finally
        {
            _lifecycle.Release();
        }
        BarrierLog.Sealed(logger);
    }

    /// <summary>Adds a KEK version; new writes use it from now on.</summary>
    /// <summary>
    /// Rekey of a passphrase vault: the keyring is wrapped again under the key
    /// <paramref name="next"/> derives (a new salt, the same KDF cost) and stored in one write, so an
    /// interruption before it leaves the old passphrase working and after it the new one; the
    /// keyring itself (and so every record) is unchanged.
    /// </summary>
    /// <exception cref="VaultSealedException">Sealed.</exception>
    /// <exception cref="ValidationException">A passphrase out of bounds (naming it), or a key-share vault.</exception>
    /// <exception cref="UnauthenticatedException">The current passphrase is wrong.</exception>
    public async Task ChangePassphraseAsync(string current, string next, CancellationToken cancellationToken)
    {
        ValidatePassphrase(current);
        ValidatePassphrase(next, "new_passphrase");
        await _lifecycle.WaitAsync(cancellationToken);
        try
        {
            var state = _state ?? throw new VaultSealedException();
            var record = store.Get<KeyringRecord>(Collections.System, KeyringRecord.Id) ?? throw new PreconditionException("vault is not initialized");
            if (record.SecretShares > 0)
            {
                throw new ValidationException("passphrase", "this vault uses key shares: rekey it with new_shares and new_threshold, then a quorum of its shares");
            }
            record.Kdf.Validate();
            var currentKey = await Task.Run(() => UnsealKeyDerivation.Derive(current, record.Salt, record.Kdf), cancellationToken);
            var matches = CryptographicOperations.FixedTimeEquals(currentKey, state.UnsealKey);
            CryptographicOperations.ZeroMemory(currentKey);
            if (!matches)
            {
                throw new UnauthenticatedException("rekey refused: the current passphrase is wrong; nothing changed");
            }
            var salt = UnsealKeyDerivation.NewSalt();
            var nextKey = await Task.Run(() => UnsealKeyDerivation.Derive(next, salt, record.Kdf), cancellationToken);
            var previousWrap = record.WrappedKeyring;
            record.Salt = salt;
            try
            {
                record.WrappedKeyring = WrapKeyring(nextKey, state.Keyring, record);
                // Past the key derivation, a client giving up must not matter: the write is whole or not at all.
                await store.WriteAsync(tx =>
                {
                    var stored = tx.Get<KeyringRecord>(Collections.System, KeyringRecord.Id);
                    if (stored is null || !stored.WrappedKeyring.AsSpan().SequenceEqual(previousWrap))
                    {
                        throw new PreconditionException("the keyring changed meanwhile (a key rotation or another rekey); try again");
                    }
                    tx.Put(Collections.System, KeyringRecord.Id, record);
                    return true;
                }, CancellationToken.None);
            }
            catch
            {
                CryptographicOperations.ZeroMemory(nextKey);
                throw;
            }
            // The keyring passes to the new state with the new unseal key; the old key and the old state's HMAC keys are zeroed.
            SetState(new UnsealedState(nextKey, state.Keyring), disposePrevious: false);
            state.DisposeUnsealKeyAndHmacKeys();
            BarrierLog.PassphraseChanged(logger);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    public async Task<int> RotateKeyAsync(CancellationToken cancellationToken)
    {
        await _lifecycle.WaitAsync(cancellationToken);
        try
        {
            var state = _state ?? throw new VaultSealedException();
            var rotated = state.Keyring.WithNewVersion();
            var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
            try
            {
                await store.WriteAsync(tx =>
                {
                    var record = tx.Get<KeyringRecord>(Collections.System, KeyringRecord.Id)
                        ?? throw new PreconditionException("vault is not initialized");
                    record.KeyVersion = rotated.CurrentVersion;
                    record.KeyRotatedAtUnixMs = now;
                    record.WrappedKeyring = WrapKeyring(state.UnsealKey, rotated, record);
                    tx.Put(Collections.System, KeyringRecord.Id, record);
                    return true;
                }, cancellationToken);
            }
            catch
            {
                rotated.Dispose();
                throw;
            }
            // The unseal key passes to the new state; only the old keyring's copies are zeroed.
            SetState(new UnsealedState(state.UnsealKey, rotated), disposePrevious: false);
            state.DisposeKeysButNotUnsealKey();
            BarrierLog.KeyRotated(logger, rotated.CurrentVersion);
            return rotated.CurrentVersion;
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Encrypts a value under a fresh data key wrapped by the newest KEK.</summary>
    public SealedValue Encrypt(RecordIdentity identity, ReadOnlySpan<byte> plaintext)
    {
        _keyUse.EnterReadLock();
        try
        {
            return EncryptLocked(identity, plaintext);
        }
        finally
        {
            _keyUse.ExitReadLock();
        }
    }

    private SealedValue EncryptLocked(RecordIdentity identity, ReadOnlySpan<byte> plaintext)
    {
        var keyring = RequireKeyring();
        var dataKey = RandomNumberGenerator.GetBytes(Aead.KeySize);
        try
        {
            var ciphertext = Aead.Seal(dataKey, plaintext, identity.ValueAssociatedData());
            var version = keyring.CurrentVersion;
            var wrapped = Aead.Seal(keyring.Kek(version), dataKey, identity.KeyAssociatedData(version));
            return new SealedValue(version, wrapped, ciphertext);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    /// <exception cref="DataIntegrityException">The value was altered or belongs to another record.</exception>
    public byte[] Decrypt(RecordIdentity identity, SealedValue value)
    {
        _keyUse.EnterReadLock();
        try
        {
            if (_state?.Keyring.CurrentVersion >= value.KekVersion)
            {
                return DecryptLocked(identity, value);
            }
        }
        finally
        {
            _keyUse.ExitReadLock();
        }
        // Under a key version newer than this node holds: another node rotated the key, and the
        // record arrived before the keyring was followed (the store publishes both, then says so).
        FollowKeyring(TimeSpan.FromSeconds(2));
        _keyUse.EnterReadLock();
        try
        {
            return DecryptLocked(identity, value);
        }
        finally
        {
            _keyUse.ExitReadLock();
        }
    }

    private byte[] DecryptLocked(RecordIdentity identity, SealedValue value)
    {
        var keyring = RequireKeyring();
        var dataKey = Aead.Open(keyring.Kek(value.KekVersion), value.WrappedDataKey, identity.KeyAssociatedData(value.KekVersion));
        try
        {
            return Aead.Open(dataKey, value.Ciphertext, identity.ValueAssociatedData());
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    /// <summary>Re-wraps the value's data key under the newest KEK; the ciphertext is untouched.</summary>
    public SealedValue Rewrap(RecordIdentity identity, SealedValue value)
    {
        _keyUse.EnterReadLock();
        try
        {
            return RewrapLocked(identity, value);
        }
        finally
        {
            _keyUse.ExitReadLock();
        }
    }

    private SealedValue RewrapLocked(RecordIdentity identity, SealedValue value)
    {
        var keyring = RequireKeyring();
        var current = keyring.CurrentVersion;
        if (value.KekVersion == current)
        {
            return value;
        }
        var dataKey = Aead.Open(keyring.Kek(value.KekVersion), value.WrappedDataKey, identity.KeyAssociatedData(value.KekVersion));
        try
        {
            return value with { KekVersion = current, WrappedDataKey = Aead.Seal(keyring.Kek(current), dataKey, identity.KeyAssociatedData(current)) };
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    /// <summary>HMAC-SHA256 of <paramref name="value"/> under the purpose's key (token hashes, audit).</summary>
    public byte[] Hmac(string purpose, ReadOnlySpan<byte> value)
    {
        _keyUse.EnterReadLock();
        try
        {
            var state = _state ?? throw new VaultSealedException();
            if (!state.HmacKeys.TryGetValue(purpose, out var key))
            {
                var made = new HmacKey(state.Keyring.DeriveHmacKey(purpose));
                key = state.HmacKeys.GetOrAdd(purpose, made);
                if (!ReferenceEquals(key, made))
                {
                    made.Dispose();
                }
            }
            return key.Compute(value);
        }
        finally
        {
            _keyUse.ExitReadLock();
        }
    }

    public void Dispose()
    {
        // Disposal ends the process's barrier; it is not a seal to tell anyone about. Subscribers
        // depend on the barrier, so the container has already disposed them (a dev server that
        // failed to start crashed here, calling a disposed scheduler).
        SetState(null, notify: false);
        _lifecycle.Dispose();
        _keyUse.Dispose();
    }

    private Keyring RequireKeyring() => (_state ?? throw new VaultSealedException()).Keyring;

    private void SetState(UnsealedState? next, bool disposePrevious = true, bool notify = true)
    {
        UnsealedState? previous;
        _keyUse.EnterWriteLock();
        try
        {
            previous = _state;
            _state = next;
            if (disposePrevious)
            {
                previous?.Dispose();
            }
        }
        finally
        {
            _keyUse.ExitWriteLock();
        }
        if (notify && (previous is null) != (next is null))
        {
            SealStateChanged?.Invoke(next is null);
        }
    }

    private static byte[] WrapKeyring(byte[] unsealKey, Keyring keyring, KeyringRecord record)
    {
        var plain = keyring.Serialize();
        try
        {
            return Aead.Seal(unsealKey, plain, record.AssociatedData());
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plain);
        }
    }

    private static void ValidatePassphrase(string passphrase, string field = "passphrase")
    {
        if (string.IsNullOrEmpty(passphrase))
        {
            throw new ValidationException(field, "must not be empty");
        }
        if (passphrase.Length < 8)
        {
            throw new ValidationException(field, "must be at least 8 characters");
        }
        if (passphrase.Length > 1024)
        {
            throw new ValidationException(field, "must be at most 1024 characters");
        }
    }

    private sealed class UnsealedState(byte[] unsealKey, Keyring keyring) : IDisposable
    {
        public byte[] UnsealKey { get; } = unsealKey;
        public Keyring Keyring { get; } = keyring;
        public System.Collections.Concurrent.ConcurrentDictionary<string, HmacKey> HmacKeys { get; } = new();

        public void Dispose()
        {
            CryptographicOperations.ZeroMemory(UnsealKey);
            DisposeKeysButNotUnsealKey();
        }

        /// <summary>After a rekey the keyring lives on in the new state; the old unseal key and the HMAC keys go.</summary>
        public void DisposeUnsealKeyAndHmacKeys()
        {
            CryptographicOperations.ZeroMemory(UnsealKey);
            foreach (var key in HmacKeys.Values)
            {
                key.Dispose();
            }
        }

        /// <summary>After a rotation the unseal key lives on in the new state; everything else goes.</summary>
        public void DisposeKeysButNotUnsealKey()
        {
            foreach (var key in HmacKeys.Values)
            {
                key.Dispose();
            }
            Keyring.Dispose();
        }
    }
}
