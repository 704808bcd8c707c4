using Vault.Server.Auth;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Identity;

/// <summary>What a userpass user is, as an admin writes it. <paramref name="Entity"/> empty: the entity named like the user.</summary>
public sealed record UserSpec(string Name, string Entity, IReadOnlyList<string> Policies, TimeSpan? TokenTtl, TimeSpan? TokenMaxTtl);

/// <summary>
/// Human login with a username and password (<see cref="PasswordHasher"/>), for an entity, with
/// the entity's second factor when it is enrolled (<see cref="MfaManager"/>). A user who fails
/// <see cref="Lockout.FreeFailures"/> times in a row is locked out (<see cref="Lockout.For"/>); the
/// state is stored, so a restart does not end it, and an admin can. One attempt per user is
/// checked at a time, password and code, so guesses sent in parallel are all counted.
/// </summary>
public sealed class UserpassManager(IVaultStore store, SecurityBarrier barrier, PolicyStore policies, Identities identities, PasswordHasher hasher, MfaManager mfa, Usage.UsageTracker usage, TimeProvider clock)
{
    public const string LockedEvent = "user-locked";
    private const string LoginRefused = "login refused: invalid username or password";
    private readonly SemaphoreSlim[] _attempts = [.. Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1))];

    public bool Exists(string name) => store.Get<UserpassUserRecord>(Collections.UserpassUsers, name) is not null;

    public async Task<UserpassUserRecord> PutUserAsync(UserSpec spec, string? password, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(spec.Name, "user.name");
        var entity = spec.Entity.Length == 0 ? spec.Name : PolicyStore.ValidateName(spec.Entity, "user.entity");
        var named = policies.ValidateExisting(spec.Policies, "user.policies");
        var ttl = TokenManager.LoginTtl(spec.TokenTtl, TokenManager.DefaultTtl, "user.token_ttl");
        var maxTtl = TokenManager.LoginTtl(spec.TokenMaxTtl, ttl > TokenManager.DefaultMaxTtl ? ttl : TokenManager.DefaultMaxTtl, "user.token_max_ttl");
        if (maxTtl < ttl)
        {
            throw new ValidationException("user.token_max_ttl", "must not be shorter than token_ttl");
        }
        string? hash = null;
        if (!string.IsNullOrEmpty(password))
        {
            ValidatePassword(password, "password");
            hash = await hasher.HashAsync(password, cancellationToken);
        }
        else if (!Exists(spec.Name))
        {
            throw new ValidationException("password", "is required for a new user");
        }
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        return await store.WriteAsync(tx =>
        {
            var existing = Load(tx, spec.Name);
            if (existing is null && hash is null)
            {
                throw new ValidationException("password", "is required for a new user");
            }
            identities.EnsureEntity(tx, entity);
            var record = new UserpassUserRecord
            {
                Entity = entity,
                Policies = named,
                TokenTtlSeconds = (long)ttl.TotalSeconds,
                TokenMaxTtlSeconds = (long)maxTtl.TotalSeconds,
                PasswordHash = hash ?? existing!.PasswordHash,
                PasswordChangedAtUnixMs = hash is null ? existing!.PasswordChangedAtUnixMs : now,
                // A new password ends a lockout, as an unlock does.
                FailedLogins = hash is null ? existing!.FailedLogins : 0,
                Lockouts = hash is null ? existing!.Lockouts : 0,
                LockedUntilUnixMs = hash is null ? existing!.LockedUntilUnixMs : null,
            };
            Put(tx, spec.Name, record);
            return record;
        }, cancellationToken);
    }

    public UserpassUserRecord GetUser(string name)
    {
        PolicyStore.ValidateName(name);
        return Load(store, name) ?? throw new NotFoundException($"no user named '{name}'");
    }

    public IReadOnlyList<string> ListUsers() => store.List<UserpassUserRecord>(Collections.UserpassUsers, "").Select(p => p.Key).ToList();

    public Task DeleteUserAsync(string name, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(name);
        return store.WriteAsync(tx =>
        {
            if (tx.Get<UserpassUserRecord>(Collections.UserpassUsers, name) is null)
            {
                throw new NotFoundException($"no user named '{name}'");
            }
            tx.Delete(Collections.UserpassUsers, name);
            return true;
        }, cancellationToken);
    }

    /// <summary>Ends the user's lockout and forgets their failed logins and lockouts.</summary>
    public Task<UserpassUserRecord> UnlockAsync(string name, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(name);
        return store.WriteAsync(tx =>
        {
            var record = Load(tx, name) ?? throw new NotFoundException($"no user named '{name}'");
            record.FailedLogins = 0;
            record.Lockouts = 0;
            record.LockedUntilUnixMs = null;
            Put(tx, name, record);
            return record;
        }, cancellationToken);
    }

    /// <summary>Username + password (+ a second-factor code when the entity is enrolled) → a token for the user's entity.</summary>
    /// <exception cref="UnauthenticatedException">Unknown user, wrong password, locked out, or the entity was deleted or disabled.</exception>
    /// <exception cref="MfaCodeRefusedException">A wrong, replayed or out-of-window code (counted towards the second factor's lockout).</exception>
    /// <exception cref="MfaRequiredException">The password was right, the entity is enrolled, and no code came with it.</exception>
    public async Task<(string Token, TokenRecord Record)> LoginAsync(string username, string password, string? mfaCode, CancellationToken cancellationToken)
    {
        ValidateUsername(username, "username");
        if (string.IsNullOrEmpty(password) || password.Length > 1024)
        {
            throw new ValidationException("password", "must be 1 to 1024 characters");
        }
        if (mfaCode is { Length: > 64 })
        {
            throw new ValidationException("mfa_code", "must be at most 64 characters");
        }
        var audit = Audit.AuditScope.Current;
        var slot = SlotOf(username);
        await slot.WaitAsync(cancellationToken);
        try
        {
            var user = await CheckPasswordAsync(username, password, audit, cancellationToken);
            var token = TokenManager.NewToken();
            var tokenHash = TokenManager.HashWith(Hmac, token);
            try
            {
                var login = await store.WriteAsync(tx =>
                {
                    var current = Load(tx, username);
                    var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
                    // Changed while the password was checked: a reset password, or a lockout, wins.
                    if (current is null || current.PasswordHash != user.PasswordHash || current.LockedUntilUnixMs > now)
                    {
                        throw new UnauthenticatedException(LoginRefused);
                    }
                    var entity = identities.EntityIn(tx, current.Entity)
                        ?? throw new UnauthenticatedException($"login refused: the user's entity '{current.Entity}' no longer exists");
                    if (entity.Disabled)
                    {
                        throw new UnauthenticatedException($"login refused: entity '{current.Entity}' is disabled");
                    }
                    var mfaAt = mfa.AtLogin(tx, current.Entity, entity.EntityId, LoadConfig(tx).RequireMfa, mfaCode, now);
                    if (current.FailedLogins != 0 || current.Lockouts != 0 || current.LockedUntilUnixMs is not null)
                    {
                        current.FailedLogins = 0;
                        current.Lockouts = 0;
                        current.LockedUntilUnixMs = null;
                        Put(tx, username, current);
                    }
                    var record = Identities.WritePersonToken(tx, Hmac, tokenHash, $"userpass-{username}", entity, current.Entity, current.Policies,
                        current.TokenTtlSeconds, current.TokenMaxTtlSeconds, now, mfaAt, [], audit);
                    return (token, record);
                }, cancellationToken);
                usage.Used(Usage.UsageKind.Person, login.Item2.EntityId);
                return login;
            }
            catch (MfaCodeRefusedException ex)
            {
                await mfa.CountFailureAsync(ex.Entity, cancellationToken);
                throw;
            }
        }
        finally
        {
            slot.Release();
        }
    }

    /// <summary>The user changes their own password, proving it with the current one.</summary>
    /// <exception cref="UnauthenticatedException">Unknown user, wrong current password, or locked out.</exception>
    public async Task ChangePasswordAsync(string username, string currentPassword, string newPassword, CancellationToken cancellationToken)
    {
        ValidateUsername(username, "username");
        if (string.IsNullOrEmpty(currentPassword) || currentPassword.Length > 1024)
        {
            throw new ValidationException("current_password", "must be 1 to 1024 characters");
        }
        ValidatePassword(newPassword, "new_password");
        var audit = Audit.AuditScope.Current;
        var slot = SlotOf(username);
        await slot.WaitAsync(cancellationToken);
        UserpassUserRecord user;
        try
        {
            user = await CheckPasswordAsync(username, currentPassword, audit, cancellationToken);
        }
        finally
        {
            slot.Release();
        }
        var hash = await hasher.HashAsync(newPassword, cancellationToken);
        await store.WriteAsync(tx =>
        {
            var current = Load(tx, username);
            if (current is null || current.PasswordHash != user.PasswordHash)
            {
                throw new UnauthenticatedException(LoginRefused);
            }
            current.PasswordHash = hash;
            current.PasswordChangedAtUnixMs = clock.GetUtcNow().ToUnixTimeMilliseconds();
            current.FailedLogins = 0;
            current.Lockouts = 0;
            current.LockedUntilUnixMs = null;
            Put(tx, username, current);
            if (audit is not null)
            {
                audit.Entity = current.Entity;
            }
            return true;
        }, cancellationToken);
    }

    public UserpassConfigRecord GetConfig() => LoadConfig(store);

    public Task<UserpassConfigRecord> SetConfigAsync(bool requireMfa, CancellationToken cancellationToken) =>
        store.WriteAsync(tx =>
        {
            var record = new UserpassConfigRecord { RequireMfa = requireMfa };
            record.Seal = RecordSeal.Compute(Hmac, Collections.System, UserpassConfigRecord.Id, record.Canonical());
            tx.Put(Collections.System, UserpassConfigRecord.Id, record);
            return record;
        }, cancellationToken);

    private UserpassConfigRecord LoadConfig(IStoreReader reader) =>
        RecordSeal.Read<UserpassConfigRecord>(reader, Hmac, Collections.System, UserpassConfigRecord.Id, r => r.Canonical(), r => r.Seal) ?? new UserpassConfigRecord();

    /// <summary>The lock one user's attempts take in turn (64 shared by all users).</summary>
    private SemaphoreSlim SlotOf(string username) => _attempts[(int)((uint)StringComparer.Ordinal.GetHashCode(username) % (uint)_attempts.Length)];

    /// <summary>
    /// Checks <paramref name="password"/> for <paramref name="username"/> (the caller holds the
    /// user's slot); a wrong one is counted (and may lock the user out) before the refusal.
    /// </summary>
    private async Task<UserpassUserRecord> CheckPasswordAsync(string username, string password, Audit.AuditScope? audit, CancellationToken cancellationToken)
    {
        var user = Load(store, username);
        if (user is null)
        {
            await hasher.SpendAsync(password, cancellationToken);
            throw new UnauthenticatedException(LoginRefused);
        }
        if (audit is not null)
        {
            audit.Entity = user.Entity;
        }
        if (user.LockedUntilUnixMs > clock.GetUtcNow().ToUnixTimeMilliseconds())
        {
            // Not checked at all: a locked-out user's password cannot be guessed meanwhile.
            throw new UnauthenticatedException(LoginRefused);
        }
        if (!await hasher.VerifyAsync(password, user.PasswordHash, cancellationToken))
        {
            if (await CountFailureAsync(username, cancellationToken) && audit is not null)
            {
                audit.Event = LockedEvent;
            }
            throw new UnauthenticatedException(LoginRefused);
        }
        return user;
    }

    /// <returns>Whether this failure locked the user out.</returns>
    private async Task<bool> CountFailureAsync(string username, CancellationToken cancellationToken)
    {
        // Not the request's change: its entry (the refusal) is written when it ends.
        CommitContext.Current = null;
        return await store.WriteAsync(tx =>
        {
            var record = Load(tx, username);
            if (record is null)
            {
                return false;
            }
            record.FailedLogins++;
            var locked = record.FailedLogins >= Lockout.FreeFailures;
            if (locked)
            {
                record.Lockouts++;
                record.FailedLogins = 0;
                record.LockedUntilUnixMs = (clock.GetUtcNow() + Lockout.For(record.Lockouts)).ToUnixTimeMilliseconds();
            }
            Put(tx, username, record);
            return locked;
        }, CancellationToken.None);
    }

    private static void ValidateUsername(string username, string field)
    {
        if (string.IsNullOrEmpty(username))
        {
            throw new ValidationException(field, "must not be empty");
        }
        PolicyStore.ValidateName(username, field);
    }

    private static void ValidatePassword(string password, string field)
    {
        if (password.Length < 8 || password.Length > 1024)
        {
            throw new ValidationException(field, "must be 8 to 1024 characters");
        }
    }

    private UserpassUserRecord? Load(IStoreReader reader, string name) =>
        RecordSeal.Read<UserpassUserRecord>(reader, Hmac, Collections.UserpassUsers, name, r => r.Canonical(), r => r.Seal);

    private void Put(IStoreWriter tx, string name, UserpassUserRecord record)
    {
        record.Seal = RecordSeal.Compute(Hmac, Collections.UserpassUsers, name, record.Canonical());
        tx.Put(Collections.UserpassUsers, name, record);
    }

    private byte[] Hmac(string purpose, byte[] value) => barrier.Hmac(purpose, value);
}
