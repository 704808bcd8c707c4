using System.Security.Cryptography;
using System.Text;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Auth;

/// <summary>A token request: what a caller asks for.</summary>
public sealed record TokenRequest(IReadOnlyList<string> Policies, TimeSpan? Ttl, TimeSpan? MaxTtl, string DisplayName, bool Orphan);

/// <summary>
/// Issues, resolves, renews and revokes tokens. Tokens are 256-bit random values, stored only
/// as HMAC-SHA256 under a keyring-derived key; revoking a token revokes its descendants.
/// </summary>
public sealed class TokenManager(IVaultStore store, SecurityBarrier barrier, PolicyStore policies, IEntityPolicies entities, Usage.UsageTracker usage, TimeProvider clock)
{
    public const string TokenPrefix = "vt_";
    public static readonly TimeSpan DefaultTtl = TimeSpan.FromHours(1);
    public static readonly TimeSpan DefaultMaxTtl = TimeSpan.FromHours(24);
    private static readonly System.Buffers.SearchValues<char> HexDigits = System.Buffers.SearchValues.Create("0123456789abcdef");
    public static readonly TimeSpan MinTtl = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan MaxTtl = TimeSpan.FromDays(3650);
    private const string HmacPurpose = "token";

    /// <summary>
    /// An accessor is "va_" and 24 hex digits. Checked before it reaches a resource path, an
    /// error message or the audit log: a token pasted by mistake must not be echoed anywhere.
    /// </summary>
    /// <exception cref="ValidationException">Not an accessor.</exception>
    public static string ValidateAccessor(string accessor) =>
        accessor.Length == 27 && accessor.StartsWith("va_", StringComparison.Ordinal) && !accessor.AsSpan(3).ContainsAnyExcept(HexDigits)
            ? accessor
            : throw new ValidationException("accessor", "is not a token accessor (va_ and 24 hex digits)");

    /// <summary>A new root token (no expiry, policy root), not yet stored. Used by init and dev mode.</summary>
    public (string Token, TokenRecord Record) NewRoot(string? fixedToken) =>
        (fixedToken ?? NewToken(), new TokenRecord
        {
            Accessor = NewAccessor(),
            Policies = [PolicyStore.RootPolicy],
            DisplayName = "root",
            CreatedAtUnixMs = Now(),
        });

    /// <summary>Creates and stores a new root token (generate-root); the request's audit entry names it and commits with it.</summary>
    public async Task<(string Token, TokenRecord Record)> CreateRootAsync(CancellationToken cancellationToken)
    {
        var (token, record) = NewRoot(null);
        var audit = Audit.AuditScope.Current;
        await store.WriteAsync(tx =>
        {
            Write(tx, Hmac, Hash(token), record);
            if (audit is not null)
            {
                audit.Accessor = record.Accessor;
            }
            return true;
        }, cancellationToken);
        return (token, record);
    }

    /// <summary>Stores a token given its keyed hash; for init, which hashes with the keyring it is creating.</summary>
    public static void Write(IStoreWriter tx, Func<string, byte[], byte[]> hmac, string hash, TokenRecord record)
    {
        record.Seal = RecordSeal.Compute(hmac, Collections.Tokens, hash, record.Canonical());
        tx.Put(Collections.Tokens, hash, record);
        tx.Put(Collections.TokenAccessors, record.Accessor, new TokenAccessorRecord { TokenHash = hash });
        if (record.ParentAccessor.Length > 0)
        {
            tx.Put(Collections.TokenChildren, record.ParentAccessor + "/" + record.Accessor, new TokenChildRecord { ChildAccessor = record.Accessor });
        }
    }

    /// <summary>The stored id of a token, given the HMAC function of the keyring.</summary>
    public static string HashWith(Func<string, byte[], byte[]> hmac, string token) => Convert.ToHexStringLower(hmac(HmacPurpose, Encoding.UTF8.GetBytes(token)));

    public async Task<(string Token, TokenRecord Record)> CreateAsync(CallerContext caller, TokenRequest request, CancellationToken cancellationToken)
    {
        var requested = request.Policies.Count == 0
            ? caller.Token.Policies.ToList()
            : request.Policies.Select(p => PolicyStore.ValidateName(p, "policies")).Distinct(StringComparer.Ordinal).ToList();
        foreach (var name in requested)
        {
            if (!policies.Exists(name))
            {
                throw new ValidationException("policies", $"no policy named '{name}'");
            }
            if (!caller.Acl.IsRoot && !caller.Token.Policies.Contains(name))
            {
                throw new AccessDeniedException($"cannot grant policy '{name}': the calling token does not hold it");
            }
        }
        if (request.Orphan && !caller.Acl.IsRoot)
        {
            throw new AccessDeniedException("only a root token can create orphan tokens");
        }
        var ttl = request.Ttl ?? DefaultTtl;
        var maxTtl = request.MaxTtl ?? (ttl > DefaultMaxTtl ? ttl : DefaultMaxTtl);
        CheckTtl(ttl, "ttl");
        CheckTtl(maxTtl, "max_ttl");
        if (maxTtl < ttl)
        {
            throw new ValidationException("max_ttl", "must not be shorter than ttl");
        }
        if (request.DisplayName.Length > 128 || request.DisplayName.Any(char.IsControl))
        {
            throw new ValidationException("display_name", "must be at most 128 printable characters");
        }
        var now = Now();
        var maxExpires = now + (long)maxTtl.TotalMilliseconds;
        if (!request.Orphan && caller.Token.MaxExpiresAtUnixMs is { } parentMax)
        {
            maxExpires = Math.Min(maxExpires, parentMax);
        }
        var record = new TokenRecord
        {
            Accessor = NewAccessor(),
            Policies = requested,
            DisplayName = request.DisplayName,
            CreatedAtUnixMs = now,
            TtlSeconds = (long)ttl.TotalSeconds,
            ExpiresAtUnixMs = Math.Min(now + (long)ttl.TotalMilliseconds, maxExpires),
            MaxExpiresAtUnixMs = maxExpires,
            ParentAccessor = request.Orphan ? "" : caller.Accessor,
            // A child acts for the same person as its parent (an orphan, made by root, for no one).
            Entity = request.Orphan ? "" : caller.Token.Entity,
            EntityId = request.Orphan ? "" : caller.Token.EntityId,
            // No fresher than its parent's: a child does not restart a step-up window.
            MfaAtUnixMs = request.Orphan ? null : caller.Token.MfaAtUnixMs,
            ExternalGroups = request.Orphan ? [] : caller.Token.ExternalGroups,
        };
        var token = NewToken();
        await SaveAsync(token, record, cancellationToken);
        return (token, record);
    }

    /// <summary>Resolves a bearer token to its caller context.</summary>
    /// <exception cref="UnauthenticatedException">Unknown, revoked or expired.</exception>
    public CallerContext Resolve(string? token)
    {
        if (string.IsNullOrEmpty(token))
        {
            throw new UnauthenticatedException("missing token: send 'authorization: Bearer <token>'");
        }
        if (token.Length > 256)
        {
            throw new UnauthenticatedException("token is invalid, revoked or expired");
        }
        var record = Load(store, Hash(token));
        if (record is null || IsExpired(record))
        {
            throw new UnauthenticatedException("token is invalid, revoked or expired");
        }
        // A token lives only while every ancestor does: a parent that expired takes its
        // descendants with it, whatever their own expiry.
        var ancestor = record;
        for (var depth = 0; ancestor.ParentAccessor.Length > 0; depth++)
        {
            ancestor = FindByAccessor(store, ancestor.ParentAccessor);
            if (ancestor is null || IsExpired(ancestor) || depth > 64)
            {
                throw new UnauthenticatedException("token is invalid, revoked or expired");
            }
        }
        usage.Used(Usage.UsageKind.Token, record.Accessor);
        if (record.EntityId.Length == 0)
        {
            return new CallerContext(record, policies.AclFor(record.Policies));
        }
        return new CallerContext(record, policies.AclFor([.. record.Policies, .. entities.PoliciesOf(record.Entity, record.EntityId, record.ExternalGroups)]));
    }

    /// <summary>
    /// Whether the token with <paramref name="accessor"/> and every ancestor of it still live, and
    /// the person it acts for is still there and enabled (leases die with their token: a person
    /// disabled or deleted loses their database credentials at the reaper's next pass).
    /// </summary>
    public bool IsLive(string accessor)
    {
        var token = FindByAccessor(store, accessor);
        if (token is { EntityId.Length: > 0 } && !entities.IsActive(token.Entity, token.EntityId))
        {
            return false;
        }
        var record = token;
        for (var depth = 0; record is not null && !IsExpired(record); depth++)
        {
            if (record.ParentAccessor.Length == 0)
            {
                return true;
            }
            if (depth > 64)
            {
                return false;
            }
            record = FindByAccessor(store, record.ParentAccessor);
        }
        return false;
    }

    public TokenRecord LookupByAccessor(string accessor)
    {
        var record = FindByAccessor(store, accessor);
        if (record is null || IsExpired(record))
        {
            throw new NotFoundException($"no live token with accessor '{accessor}'");
        }
        return record;
    }

    public Task<TokenRecord> RenewAsync(string accessor, TimeSpan? increment, CancellationToken cancellationToken)
    {
        if (increment is { } inc)
        {
            CheckTtl(inc, "increment");
        }
        return store.WriteAsync(tx =>
        {
            var (hash, record) = FindByAccessorWithHash(tx, accessor);
            if (record is null || IsExpired(record))
            {
                throw new NotFoundException($"no live token with accessor '{accessor}'");
            }
            if (record.ExpiresAtUnixMs is null)
            {
                return record;
            }
            var extend = increment ?? TimeSpan.FromSeconds(record.TtlSeconds);
            var next = Now() + (long)extend.TotalMilliseconds;
            record.ExpiresAtUnixMs = record.MaxExpiresAtUnixMs is { } max ? Math.Min(next, max) : next;
            record.Seal = RecordSeal.Compute(Hmac, Collections.Tokens, hash!, record.Canonical());
            tx.Put(Collections.Tokens, hash!, record);
            return record;
        }, cancellationToken);
    }

    /// <summary>
    /// Runs <paramref name="check"/> (a second-factor check, in the same commit) and records in
    /// the token with <paramref name="accessor"/> that an MFA code was validated for it now.
    /// </summary>
    public Task<(TokenRecord Record, int Result)> MarkMfaAsync(string accessor, Func<IStoreWriter, int> check, CancellationToken cancellationToken) =>
        store.WriteAsync(tx =>
        {
            var (hash, record) = FindByAccessorWithHash(tx, accessor);
            if (record is null || IsExpired(record))
            {
                throw new UnauthenticatedException("token is invalid, revoked or expired");
            }
            var result = check(tx);
            record.MfaAtUnixMs = Now();
            record.Seal = RecordSeal.Compute(Hmac, Collections.Tokens, hash!, record.Canonical());
            tx.Put(Collections.Tokens, hash!, record);
            return (record, result);
        }, cancellationToken);

    /// <summary>Revokes the token and every descendant.</summary>
    /// <returns>How many tokens were revoked.</returns>
    public async Task<int> RevokeAsync(string accessor, CancellationToken cancellationToken)
    {
        var revoked = await store.WriteAsync(tx =>
        {
            if (tx.Get<TokenAccessorRecord>(Collections.TokenAccessors, accessor) is null)
            {
                throw new NotFoundException($"no token with accessor '{accessor}'");
            }
            var revoked = new List<string>();
            var pending = new Stack<string>();
            pending.Push(accessor);
            while (pending.Count > 0)
            {
                var current = pending.Pop();
                foreach (var (linkId, child) in tx.List<TokenChildRecord>(Collections.TokenChildren, current + "/"))
                {
                    pending.Push(child.ChildAccessor);
                    tx.Delete(Collections.TokenChildren, linkId);
                }
                var (hash, record) = FindByAccessorWithHash(tx, current);
                if (hash is not null)
                {
                    tx.Delete(Collections.Tokens, hash);
                    tx.Delete(Collections.TokenAccessors, current);
                    if (record is { ParentAccessor.Length: > 0 })
                    {
                        tx.Delete(Collections.TokenChildren, record.ParentAccessor + "/" + current);
                    }
                    revoked.Add(current);
                }
            }
            return revoked;
        }, cancellationToken);
        // Their last uses are of no more interest (the report lists live tokens only).
        await usage.ForgetAsync(revoked.Select(a => (Usage.UsageKind.Token, a)).ToList(), cancellationToken);
        return revoked.Count;
    }

    /// <summary>
    /// Deletes the records of tokens that have expired (with their accessor and child links, and
    /// their last use): an expired token answers as a revoked one does, so nothing is lost, and the
    /// store no longer keeps a record of every login ever made.
    /// </summary>
    /// <returns>How many were deleted.</returns>
    public async Task<int> TidyAsync(CancellationToken cancellationToken)
    {
        var now = Now();
        var expired = store.List<TokenRecord>(Collections.Tokens, "")
            .Where(entry => entry.Value.ExpiresAtUnixMs is { } expires && expires <= now)
            .ToList();
        foreach (var chunk in expired.Chunk(1000))
        {
            await store.WriteAsync(tx =>
            {
                foreach (var (hash, _) in chunk)
                {
                    // Read again in the commit: renewed meanwhile, it stays.
                    if (tx.Get<TokenRecord>(Collections.Tokens, hash) is not { ExpiresAtUnixMs: { } expires } record || expires > now)
                    {
                        continue;
                    }
                    tx.Delete(Collections.Tokens, hash);
                    tx.Delete(Collections.TokenAccessors, record.Accessor);
                    foreach (var (linkId, _) in tx.List<TokenChildRecord>(Collections.TokenChildren, record.Accessor + "/"))
                    {
                        tx.Delete(Collections.TokenChildren, linkId);
                    }
                    if (record.ParentAccessor.Length > 0)
                    {
                        tx.Delete(Collections.TokenChildren, record.ParentAccessor + "/" + record.Accessor);
                    }
                }
                return true;
            }, cancellationToken);
        }
        await usage.ForgetAsync(expired.Select(e => (Usage.UsageKind.Token, e.Value.Accessor)).ToList(), cancellationToken);
        return expired.Count;
    }

    /// <summary>Every token that has not expired, its seal verified (for reports).</summary>
    /// <exception cref="DataIntegrityException">A stored record was altered outside the vault.</exception>
    public IReadOnlyList<TokenRecord> ListLive() =>
        store.List<TokenRecord>(Collections.Tokens, "")
            .Select(entry => RecordSeal.Verified(Hmac, Collections.Tokens, entry.Key, entry.Value, entry.Value.Canonical(), entry.Value.Seal))
            .Where(record => !IsExpired(record))
            .ToList();

    /// <summary>The accessors of the tokens <paramref name="accessor"/> made (its children; revoking it revokes them).</summary>
    public IReadOnlyList<string> ChildrenOf(string accessor) =>
        store.List<TokenChildRecord>(Collections.TokenChildren, accessor + "/").Select(link => link.Value.ChildAccessor).ToList();

    public bool IsExpired(TokenRecord record) => record.ExpiresAtUnixMs is { } expires && expires <= Now();

    private async Task SaveAsync(string token, TokenRecord record, CancellationToken cancellationToken)
    {
        var hash = Hash(token);
        await store.WriteAsync(tx =>
        {
            if (record.ParentAccessor.Length > 0 && tx.Get<TokenAccessorRecord>(Collections.TokenAccessors, record.ParentAccessor) is null)
            {
                throw new UnauthenticatedException("the calling token was revoked");
            }
            Write(tx, Hmac, hash, record);
            return true;
        }, cancellationToken);
    }

    /// <summary>A token lifetime a role or user sets: <paramref name="value"/>, or <paramref name="fallback"/> when unset, within the bounds every token has.</summary>
    /// <exception cref="ValidationException">Outside <see cref="MinTtl"/>..<see cref="MaxTtl"/>, naming <paramref name="field"/>.</exception>
    public static TimeSpan LoginTtl(TimeSpan? value, TimeSpan fallback, string field)
    {
        var ttl = value ?? fallback;
        CheckTtl(ttl, field);
        return ttl;
    }

    private static void CheckTtl(TimeSpan value, string field)
    {
        if (value < MinTtl || value > MaxTtl)
        {
            throw new ValidationException(field, $"must be between {MinTtl.TotalSeconds:0} second and {MaxTtl.TotalDays:0} days");
        }
    }

    private TokenRecord? FindByAccessor(IStoreReader reader, string accessor) => FindByAccessorWithHash(reader, accessor).Record;

    private (string? Hash, TokenRecord? Record) FindByAccessorWithHash(IStoreReader reader, string accessor)
    {
        var link = reader.Get<TokenAccessorRecord>(Collections.TokenAccessors, accessor);
        return link is null ? (null, null) : (link.TokenHash, Load(reader, link.TokenHash));
    }

    /// <exception cref="DataIntegrityException">The stored record was altered outside the vault.</exception>
    private TokenRecord? Load(IStoreReader reader, string hash)
    {
        if (reader is IVaultStore shared)
        {
            // Verified once per stored version; the record is shared and never mutated.
            return shared.GetDerived<TokenRecord, TokenRecord>(Collections.Tokens, hash, record =>
            {
                RecordSeal.Verify(Hmac, Collections.Tokens, hash, record.Canonical(), record.Seal);
                return record;
            });
        }
        var record = reader.Get<TokenRecord>(Collections.Tokens, hash);
        if (record is not null)
        {
            RecordSeal.Verify(Hmac, Collections.Tokens, hash, record.Canonical(), record.Seal);
        }
        return record;
    }

    private byte[] Hmac(string purpose, byte[] value) => barrier.Hmac(purpose, value);

    private string Hash(string token) => HashWith(Hmac, token);

    private long Now() => clock.GetUtcNow().ToUnixTimeMilliseconds();

    internal static string NewToken() => TokenPrefix + Base64Url(RandomNumberGenerator.GetBytes(32));

    internal static string NewAccessor() => "va_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
