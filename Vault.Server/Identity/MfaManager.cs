using System.Security.Cryptography;
using System.Text;
using Vault.Server.Auth;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Identity;

/// <summary>A new enrolment: shown once.</summary>
public sealed record MfaEnrollment(string OtpauthUri, IReadOnlyList<string> RecoveryCodes);

/// <summary>
/// TOTP second factor per entity (<see cref="Totp"/>): enrolment (pending until a first code is
/// validated), code checks at login and for step-up, single-use recovery codes. A code is
/// accepted for the step before, the step of and the step after now, once: the step it matched is
/// kept, and no code of that step or an earlier one is accepted again. Five wrong codes in a row
/// lock the second factor as a password lockout does (a minute, doubling).
/// </summary>
public sealed class MfaManager(IVaultStore store, SecurityBarrier barrier, Identities identities, TokenManager tokens, TimeProvider clock)
{
    public const string Issuer = "Vault";
    public const int RecoveryCodeCount = 10;
    private const string SecretKind = "mfa-totp";
    private const string RecoveryPurpose = "mfa-recovery-code";
    private const string CodeRefused = "mfa code refused: wrong, already used, or outside its time window";
    private readonly SemaphoreSlim[] _attempts = [.. Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1))];

    /// <summary>Enrols <paramref name="entity"/> (replacing a pending enrolment).</summary>
    /// <exception cref="PreconditionException">An enrolment is in effect.</exception>
    public async Task<MfaEnrollment> EnrollAsync(string entity, string entityId, CancellationToken cancellationToken)
    {
        var secret = RandomNumberGenerator.GetBytes(20);
        var codes = Enumerable.Range(0, RecoveryCodeCount).Select(_ => NewRecoveryCode()).ToList();
        try
        {
            await store.WriteAsync(tx =>
            {
                var owner = identities.EntityIn(tx, entity);
                if (owner is null || owner.EntityId != entityId)
                {
                    throw new UnauthenticatedException("token is invalid, revoked or expired: its entity was deleted");
                }
                if (Load(tx, entity) is { Confirmed: true } existing && existing.EntityId == entityId)
                {
                    throw new PreconditionException($"entity '{entity}' is enrolled in MFA already: an admin resets the enrolment first (vaultctl mfa reset {entity})");
                }
                var sealedSecret = barrier.Encrypt(Identity(entity, entityId), secret);
                var record = new MfaRecord
                {
                    EntityId = entityId,
                    EnrolledAtUnixMs = clock.GetUtcNow().ToUnixTimeMilliseconds(),
                    RecoveryCodeHashes = codes.Select(RecoveryHash).ToList(),
                    KekVersion = sealedSecret.KekVersion,
                    WrappedDataKey = sealedSecret.WrappedDataKey,
                    Ciphertext = sealedSecret.Ciphertext,
                };
                Put(tx, entity, record);
                return true;
            }, cancellationToken);
            var label = Uri.EscapeDataString($"{Issuer}:{entity}");
            return new MfaEnrollment($"otpauth://totp/{label}?secret={Totp.Base32(secret)}&issuer={Issuer}&algorithm=SHA1&digits={Totp.Digits}&period={(int)Totp.Period.TotalSeconds}", codes);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    /// <summary>
    /// Whether <paramref name="entity"/>'s login needs a code: an enrolment of this entity is in
    /// effect, or the login method requires MFA of everyone and there is one waiting for its
    /// first code (the code confirms it).
    /// </summary>
    /// <exception cref="MfaRequiredException">The method requires MFA and the entity has no enrolment at all.</exception>
    internal bool Required(IStoreReader reader, string entity, string entityId, bool methodRequiresMfa)
    {
        var record = Load(reader, entity);
        var mine = record is not null && record.EntityId == entityId;
        if (mine && record!.Confirmed)
        {
            return true;
        }
        if (!methodRequiresMfa)
        {
            return false;
        }
        return mine
            ? true
            : throw new MfaRequiredException($"this login method requires MFA and entity '{entity}' is not enrolled: an admin enrols you (vaultctl mfa enroll --entity {entity}) and gives you the QR code");
    }

    /// <summary>
    /// The second factor of a person's login, inside the login's commit: when the entity needs one
    /// (<see cref="Required"/>), <paramref name="code"/> must be a good one, and its use commits
    /// with the token. A refused code is for the caller to count (<see cref="CountFailureAsync"/>,
    /// with <see cref="MfaCodeRefusedException.Entity"/>) once the commit is abandoned.
    /// </summary>
    /// <returns>When the code was validated (now), or null when none was needed.</returns>
    /// <exception cref="MfaRequiredException">One is needed and none came.</exception>
    /// <exception cref="MfaCodeRefusedException">The code was wrong, replayed or out of its window.</exception>
    internal long? AtLogin(IStoreWriter tx, string entity, string entityId, bool methodRequiresMfa, string? code, long now)
    {
        if (!Required(tx, entity, entityId, methodRequiresMfa))
        {
            return null;
        }
        if (string.IsNullOrWhiteSpace(code))
        {
            throw new MfaRequiredException($"entity '{entity}' is enrolled: send a code from the authenticator (or a recovery code) with the password");
        }
        Use(tx, entity, entityId, code);
        return now;
    }

    /// <summary>The id of the entity named <paramref name="entity"/>, for an admin enrolling it.</summary>
    /// <exception cref="NotFoundException">No such entity.</exception>
    public string EntityIdOf(string entity) => identities.GetEntity(entity).EntityId;

    /// <summary>
    /// Checks <paramref name="code"/> (TOTP or recovery) for <paramref name="entity"/> inside
    /// <paramref name="tx"/>, and on success records its use there (and confirms a pending
    /// enrolment). A refused code changes nothing here: the caller counts it with <see cref="CountFailureAsync"/>.
    /// </summary>
    /// <returns>The recovery codes left.</returns>
    /// <exception cref="MfaCodeRefusedException">Wrong, replayed or out-of-window code, or the second factor is locked.</exception>
    /// <exception cref="PreconditionException">The entity is not enrolled.</exception>
    internal int Use(IStoreWriter tx, string entity, string entityId, string code)
    {
        var record = Load(tx, entity);
        if (record is null || record.EntityId != entityId)
        {
            throw new PreconditionException($"entity '{entity}' is not enrolled in MFA (vaultctl mfa enroll)");
        }
        var now = clock.GetUtcNow();
        if (record.LockedUntilUnixMs > now.ToUnixTimeMilliseconds())
        {
            throw new MfaCodeRefusedException(CodeRefused, entity);
        }
        var normalized = code.Trim();
        if (normalized.Length == Totp.Digits && normalized.All(char.IsAsciiDigit))
        {
            var secret = barrier.Decrypt(Identity(entity, entityId), record.ToSealed());
            try
            {
                var current = Totp.StepAt(now);
                var matched = Enumerable.Range(-1, 3).Select(d => current + d)
                    .Where(step => step > record.LastUsedStep)
                    .Where(step => CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Totp.Code(secret, step)), Encoding.ASCII.GetBytes(normalized)))
                    .Cast<long?>()
                    .FirstOrDefault();
                if (matched is not { } step)
                {
                    throw new MfaCodeRefusedException(CodeRefused, entity);
                }
                record.LastUsedStep = step;
            }
            finally
            {
                CryptographicOperations.ZeroMemory(secret);
            }
        }
        else
        {
            var hash = RecoveryHash(normalized);
            if (!record.RecoveryCodeHashes.Remove(hash))
            {
                throw new MfaCodeRefusedException(CodeRefused, entity);
            }
        }
        record.Confirmed = true;
        record.FailedCodes = 0;
        record.Lockouts = 0;
        record.LockedUntilUnixMs = null;
        Put(tx, entity, record);
        return record.RecoveryCodeHashes.Count;
    }

    /// <summary>
    /// Validates <paramref name="code"/> for the person's token with <paramref name="accessor"/>, one
    /// attempt per entity at a time: the code's use and the token's validation time commit together;
    /// a refused code is counted before the refusal.
    /// </summary>
    /// <returns>The token as it is now, and the recovery codes left.</returns>
    public async Task<(TokenRecord Token, int RecoveryCodesLeft)> ValidateAsync(string accessor, string entity, string entityId, string code, CancellationToken cancellationToken)
    {
        var slot = _attempts[(int)((uint)StringComparer.Ordinal.GetHashCode(entity) % (uint)_attempts.Length)];
        await slot.WaitAsync(cancellationToken);
        try
        {
            return await tokens.MarkMfaAsync(accessor, tx => Use(tx, entity, entityId, code), cancellationToken);
        }
        catch (MfaCodeRefusedException)
        {
            await CountFailureAsync(entity, cancellationToken);
            throw;
        }
        finally
        {
            slot.Release();
        }
    }

    /// <summary>Counts a refused code; the fifth in a row locks the second factor.</summary>
    internal async Task CountFailureAsync(string entity, CancellationToken cancellationToken)
    {
        // Not the request's change: its entry (the refusal) is written when it ends.
        CommitContext.Current = null;
        await store.WriteAsync(tx =>
        {
            if (Load(tx, entity) is not { } record)
            {
                return false;
            }
            record.FailedCodes++;
            if (record.FailedCodes >= Lockout.FreeFailures)
            {
                record.Lockouts++;
                record.FailedCodes = 0;
                record.LockedUntilUnixMs = (clock.GetUtcNow() + Lockout.For(record.Lockouts)).ToUnixTimeMilliseconds();
            }
            Put(tx, entity, record);
            return true;
        }, CancellationToken.None);
    }

    public MfaRecord? Get(string entity)
    {
        PolicyStore.ValidateName(entity, "entity");
        return Load(store, entity);
    }

    public Task ResetAsync(string entity, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(entity, "entity");
        return store.WriteAsync(tx =>
        {
            if (tx.Get<MfaRecord>(Collections.Mfa, entity) is null)
            {
                throw new NotFoundException($"entity '{entity}' has no MFA enrolment");
            }
            tx.Delete(Collections.Mfa, entity);
            return true;
        }, cancellationToken);
    }

    /// <summary>Decrypts every stored TOTP secret in <paramref name="reader"/> (a backup being verified) and forgets them; how many.</summary>
    /// <exception cref="DataIntegrityException">A secret does not decrypt.</exception>
    internal static long DecryptAll(IStoreReader reader, SecurityBarrier barrier)
    {
        long count = 0;
        foreach (var (entity, record) in reader.List<MfaRecord>(Collections.Mfa, ""))
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(barrier.Decrypt(Identity(entity, record.EntityId), record.ToSealed()));
            count++;
        }
        return count;
    }

    private static RecordIdentity Identity(string entity, string entityId) => new(SecretKind, $"{entity}#{entityId}", 1);

    /// <summary>Twelve characters from an alphabet without look-alikes, in groups of four.</summary>
    private static string NewRecoveryCode()
    {
        const string Alphabet = "abcdefghjkmnpqrstuvwxyz23456789";
        var chars = RandomNumberGenerator.GetItems<char>(Alphabet, 12);
        return $"{new string(chars, 0, 4)}-{new string(chars, 4, 4)}-{new string(chars, 8, 4)}";
    }

    private string RecoveryHash(string code) => Convert.ToHexStringLower(barrier.Hmac(RecoveryPurpose, Encoding.UTF8.GetBytes(code.ToLowerInvariant())));

    private MfaRecord? Load(IStoreReader reader, string entity) =>
        RecordSeal.Read<MfaRecord>(reader, Hmac, Collections.Mfa, entity, r => r.Canonical(), r => r.Seal);

    private void Put(IStoreWriter tx, string entity, MfaRecord record)
    {
        record.Seal = RecordSeal.Compute(Hmac, Collections.Mfa, entity, record.Canonical());
        tx.Put(Collections.Mfa, entity, record);
    }

    private byte[] Hmac(string purpose, byte[] value) => barrier.Hmac(purpose, value);
}

/// <summary>A second-factor code that was wrong, replayed or out of its window (UNAUTHENTICATED).</summary>
/// <param name="entity">Whose code it was: the failure counts towards that entity's second-factor lockout.</param>
public sealed class MfaCodeRefusedException(string message, string entity = "") : VaultException(message)
{
    public string Entity { get; } = entity;
}
