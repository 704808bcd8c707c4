using System.Security.Cryptography;
using Vault.Server.Storage;

namespace Vault.Server.Crypto;

/// <summary>Where a re-split of key shares stands.</summary>
public sealed record ShareRekeyStep(int Progress, int Threshold, byte[][]? NewShares, bool VerificationPending, DateTimeOffset? RekeyedAt);

/// <summary>
/// Re-splitting key shares, in three steps so that no crash can leave a vault nobody can unseal:
/// (1) start, naming the new split; (2) a quorum of the current shares — a new random unseal key
/// is made and split, the keyring wrapped under it is <em>staged</em> beside the current one, and
/// the new shares are returned (the current shares still unseal); (3) a quorum of the new shares
/// given back — proving they reached their holders — makes them current in one write. A crash
/// before (3) leaves the current shares working; after it, the new ones.
/// </summary>
public sealed partial class SecurityBarrier
{
    private readonly ShareQuorum _rekeyShares = new(clock);
    private readonly ShareQuorum _verifyShares = new(clock);
    private (int Shares, int Threshold)? _rekeyTarget;

    /// <summary>Step 1: starts a re-split into <paramref name="shares"/> shares of which <paramref name="threshold"/> unseal (forgetting any re-split before, staged or not).</summary>
    /// <exception cref="ValidationException">Counts out of range, or a passphrase vault.</exception>
    public async Task<ShareRekeyStep> StartShareRekeyAsync(int shares, int threshold, CancellationToken cancellationToken)
    {
        if (shares < 2 || shares > Shamir.MaxParts)
        {
            throw new ValidationException("new_shares", $"must be 2 to {Shamir.MaxParts}");
        }
        if (threshold < 2 || threshold > shares)
        {
            throw new ValidationException("new_threshold", $"must be 2 to new_shares ({shares})");
        }
        var current = CurrentShareConfig();
        await ResetShareRekeyAsync(cancellationToken);
        _rekeyTarget = (shares, threshold);
        _rekeyShares.Start([1]);
        return new ShareRekeyStep(0, current.Threshold, null, false, null);
    }

    /// <summary>Step 2: one current share; at the threshold, the new shares (staged, returned once).</summary>
    /// <exception cref="PreconditionException">No re-split was started (or it expired).</exception>
    /// <exception cref="UnauthenticatedException">The quorum is not of this vault's current shares (all are forgotten).</exception>
    public async Task<ShareRekeyStep> RekeyWithShareAsync(byte[] share, CancellationToken cancellationToken)
    {
        var current = CurrentShareConfig();
        _rekeyShares.Count(out _);
        if (_rekeyShares.Attempt is null || _rekeyTarget is not { } target)
        {
            throw new PreconditionException("no re-split is in progress: start one with new_shares and new_threshold");
        }
        if (_rekeyShares.Add(share, current.Threshold) is not { } quorum)
        {
            return new ShareRekeyStep(_rekeyShares.Count(out _), current.Threshold, null, false, null);
        }
        _rekeyTarget = null;
        await _lifecycle.WaitAsync(cancellationToken);
        try
        {
            var state = _state ?? throw new VaultSealedException();
            var given = ShareQuorum.Combine(quorum);
            var matches = CryptographicOperations.FixedTimeEquals(given, state.UnsealKey);
            CryptographicOperations.ZeroMemory(given);
            if (!matches)
            {
                throw new UnauthenticatedException("rekey refused: the shares given are not this vault's current shares (one is wrong, damaged, of another vault, or from before a rekey); start again");
            }
            var active = store.Get<KeyringRecord>(Collections.System, KeyringRecord.Id) ?? throw new PreconditionException("vault is not initialized");
            var newKey = RandomNumberGenerator.GetBytes(32);
            try
            {
                var split = Shamir.Split(newKey, target.Shares, target.Threshold);
                var pending = new KeyringRecord
                {
                    SecretShares = target.Shares,
                    SecretThreshold = target.Threshold,
                    KeyVersion = active.KeyVersion,
                    CreatedAtUnixMs = active.CreatedAtUnixMs,
                    KeyRotatedAtUnixMs = active.KeyRotatedAtUnixMs,
                };
                pending.WrappedKeyring = WrapKeyring(newKey, state.Keyring, pending);
                await store.WriteAsync(tx =>
                {
                    tx.Put(Collections.System, KeyringRecord.PendingId, pending);
                    return true;
                }, CancellationToken.None);
                BarrierLog.RekeyStaged(logger, target.Shares, target.Threshold);
                return new ShareRekeyStep(0, target.Threshold, split, true, null);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(newKey);
            }
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Step 3: one of the new shares given back; at the threshold, they become the vault's shares.</summary>
    /// <exception cref="PreconditionException">Nothing is staged; or the keyring was rotated since (start again).</exception>
    /// <exception cref="UnauthenticatedException">The quorum does not open the staged keyring (all are forgotten; the staged split stays).</exception>
    public async Task<ShareRekeyStep> VerifyRekeyShareAsync(byte[] share, CancellationToken cancellationToken)
    {
        var pending = store.Get<KeyringRecord>(Collections.System, KeyringRecord.PendingId)
            ?? throw new PreconditionException("no re-split waits for its new shares");
        if (_verifyShares.Add(share, pending.SecretThreshold) is not { } quorum)
        {
            return new ShareRekeyStep(_verifyShares.Count(out _), pending.SecretThreshold, null, true, null);
        }
        var newKey = ShareQuorum.Combine(quorum);
        await _lifecycle.WaitAsync(cancellationToken);
        try
        {
            var state = _state ?? throw new VaultSealedException();
            try
            {
                var plain = Aead.Open(newKey, pending.WrappedKeyring, pending.AssociatedData());
                CryptographicOperations.ZeroMemory(plain);
            }
            catch (DataIntegrityException)
            {
                CryptographicOperations.ZeroMemory(newKey);
                throw new UnauthenticatedException("rekey verification refused: the shares given back are not the new ones (one is wrong or damaged); give them again");
            }
            var now = clock.GetUtcNow();
            try
            {
                await store.WriteAsync(tx =>
                {
                    var active = tx.Get<KeyringRecord>(Collections.System, KeyringRecord.Id);
                    var staged = tx.Get<KeyringRecord>(Collections.System, KeyringRecord.PendingId);
                    if (active is null || staged is null || !staged.WrappedKeyring.AsSpan().SequenceEqual(pending.WrappedKeyring))
                    {
                        throw new PreconditionException("the staged re-split changed meanwhile; start again");
                    }
                    if (active.KeyVersion != staged.KeyVersion)
                    {
                        // The staged keyring lacks the newer key: promoting it would lose data.
                        tx.Delete(Collections.System, KeyringRecord.PendingId);
                        throw new PreconditionException("the key was rotated since the new shares were made; start the re-split again");
                    }
                    staged.KeyRotatedAtUnixMs = active.KeyRotatedAtUnixMs;
                    // KeyRotatedAtUnixMs is not bound into the associated data: the wrap stays valid.
                    tx.Put(Collections.System, KeyringRecord.Id, staged);
                    tx.Delete(Collections.System, KeyringRecord.PendingId);
                    return true;
                }, CancellationToken.None);
            }
            catch
            {
                CryptographicOperations.ZeroMemory(newKey);
                throw;
            }
            SetState(new UnsealedState(newKey, state.Keyring), disposePrevious: false);
            state.DisposeUnsealKeyAndHmacKeys();
            BarrierLog.Rekeyed(logger, pending.SecretShares, pending.SecretThreshold);
            return new ShareRekeyStep(pending.SecretThreshold, pending.SecretThreshold, null, false, now);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Forgets a re-split in progress, and drops its staged keyring.</summary>
    public async Task ResetShareRekeyAsync(CancellationToken cancellationToken)
    {
        _rekeyShares.Reset();
        _verifyShares.Reset();
        _rekeyTarget = null;
        if (store.Get<KeyringRecord>(Collections.System, KeyringRecord.PendingId) is not null)
        {
            await store.WriteAsync(tx =>
            {
                tx.Delete(Collections.System, KeyringRecord.PendingId);
                return true;
            }, cancellationToken);
        }
    }

    /// <summary>Whether a staged re-split waits for its new shares.</summary>
    public bool RekeyVerificationPending => store.Get<KeyringRecord>(Collections.System, KeyringRecord.PendingId) is not null;

    private (int Shares, int Threshold) CurrentShareConfig() =>
        ShareConfig ?? throw new ValidationException("new_shares", "this vault uses a passphrase: rekey it with passphrase and new_passphrase");
}
