using System.Net;
using System.Security.Cryptography;
using System.Text;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Auth;

/// <summary>What a role is, as an admin writes it.</summary>
public sealed record AppRoleSpec(string Name, IReadOnlyList<string> Policies, TimeSpan? TokenTtl, TimeSpan? TokenMaxTtl, TimeSpan? SecretIdTtl,
    uint SecretIdNumUses, IReadOnlyList<string> BoundCidrs);

/// <summary>A freshly issued secret id: the only time it is seen.</summary>
public sealed record IssuedSecretId(string SecretId, string Accessor, DateTimeOffset? ExpiresAt, int NumUses);

/// <summary>
/// Machine login: roles with policies and token lifetimes, secret ids (random, stored as keyed
/// hashes, limited in time and uses, optionally bound to networks), and login → token. Failed
/// logins are slowed down per role id by <see cref="LoginThrottle"/>.
/// </summary>
public sealed class AppRoleManager(IVaultStore store, SecurityBarrier barrier, PolicyStore policies, LoginThrottle throttle, Usage.UsageTracker usage, TimeProvider clock)
{
    public static readonly TimeSpan DefaultSecretIdTtl = TimeSpan.FromHours(24);
    private const string HmacPurpose = "approle-secret-id";
    private const string LoginRefused = "login refused: invalid role id or secret id";

    public bool Exists(string name) => store.Get<AppRoleRecord>(Collections.AppRoles, name) is not null;

    public async Task<AppRoleRecord> PutRoleAsync(AppRoleSpec spec, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(spec.Name, "role.name");
        if (spec.Policies.Count == 0)
        {
            throw new ValidationException("role.policies", "must name at least one policy");
        }
        foreach (var policy in spec.Policies)
        {
            PolicyStore.ValidateName(policy, "role.policies");
            if (!policies.Exists(policy))
            {
                throw new ValidationException("role.policies", $"no policy named '{policy}'");
            }
        }
        var ttl = TokenManager.LoginTtl(spec.TokenTtl, TokenManager.DefaultTtl, "role.token_ttl");
        var maxTtl = TokenManager.LoginTtl(spec.TokenMaxTtl, ttl > TokenManager.DefaultMaxTtl ? ttl : TokenManager.DefaultMaxTtl, "role.token_max_ttl");
        if (maxTtl < ttl)
        {
            throw new ValidationException("role.token_max_ttl", "must not be shorter than token_ttl");
        }
        var secretIdTtl = TokenManager.LoginTtl(spec.SecretIdTtl, DefaultSecretIdTtl, "role.secret_id_ttl");
        if (spec.SecretIdNumUses > 1_000_000)
        {
            throw new ValidationException("role.secret_id_num_uses", "must be at most 1000000");
        }
        if (spec.BoundCidrs.Count > 64)
        {
            throw new ValidationException("role.bound_cidrs", "must list at most 64 networks");
        }
        var cidrs = new List<string>();
        for (var i = 0; i < spec.BoundCidrs.Count; i++)
        {
            if (!IPNetwork.TryParse(spec.BoundCidrs[i], out var network))
            {
                throw new ValidationException($"role.bound_cidrs[{i}]", $"'{spec.BoundCidrs[i]}' is not a network like 10.0.0.0/8");
            }
            cidrs.Add(network.ToString());
        }
        return await store.WriteAsync(tx =>
        {
            var existing = tx.Get<AppRoleRecord>(Collections.AppRoles, spec.Name);
            var record = new AppRoleRecord
            {
                RoleId = existing?.RoleId ?? "vr_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)),
                Policies = spec.Policies.Distinct(StringComparer.Ordinal).ToList(),
                TokenTtlSeconds = (long)ttl.TotalSeconds,
                TokenMaxTtlSeconds = (long)maxTtl.TotalSeconds,
                SecretIdTtlSeconds = (long)secretIdTtl.TotalSeconds,
                SecretIdNumUses = (int)spec.SecretIdNumUses,
                BoundCidrs = cidrs,
            };
            record.Seal = RecordSeal.Compute(Hmac, Collections.AppRoles, spec.Name, record.Canonical());
            tx.Put(Collections.AppRoles, spec.Name, record);
            tx.Put(Collections.AppRoleIds, record.RoleId, new AppRoleIdRecord { RoleName = spec.Name });
            return record;
        }, cancellationToken);
    }

    public AppRoleRecord GetRole(string name)
    {
        PolicyStore.ValidateName(name);
        return LoadRole(store, name) ?? throw new NotFoundException($"no role named '{name}'");
    }

    public IReadOnlyList<string> ListRoles() => store.List<AppRoleRecord>(Collections.AppRoles, "").Select(p => p.Key).ToList();

    public Task DeleteRoleAsync(string name, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(name);
        return store.WriteAsync(tx =>
        {
            var role = tx.Get<AppRoleRecord>(Collections.AppRoles, name) ?? throw new NotFoundException($"no role named '{name}'");
            foreach (var (id, _) in tx.List<SecretIdRecord>(Collections.SecretIds, name + "/"))
            {
                tx.Delete(Collections.SecretIds, id);
            }
            tx.Delete(Collections.AppRoleIds, role.RoleId);
            tx.Delete(Collections.AppRoles, name);
            return true;
        }, cancellationToken);
    }

    public async Task<IssuedSecretId> CreateSecretIdAsync(string name, CancellationToken cancellationToken)
    {
        var role = GetRole(name);
        var secretId = "vs_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var now = clock.GetUtcNow();
        var record = new SecretIdRecord
        {
            RoleName = name,
            Accessor = "vsa_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12)),
            CreatedAtUnixMs = now.ToUnixTimeMilliseconds(),
            ExpiresAtUnixMs = role.SecretIdTtlSeconds > 0 ? now.AddSeconds(role.SecretIdTtlSeconds).ToUnixTimeMilliseconds() : null,
            UsesLeft = role.SecretIdNumUses > 0 ? role.SecretIdNumUses : null,
        };
        var id = SecretIdKey(name, secretId);
        record.Seal = RecordSeal.Compute(Hmac, Collections.SecretIds, id, record.Canonical());
        await store.WriteAsync(tx =>
        {
            if (tx.Get<AppRoleRecord>(Collections.AppRoles, name) is null)
            {
                throw new NotFoundException($"no role named '{name}'");
            }
            tx.Put(Collections.SecretIds, id, record);
            return true;
        }, cancellationToken);
        return new IssuedSecretId(secretId, record.Accessor,
            record.ExpiresAtUnixMs is { } e ? DateTimeOffset.FromUnixTimeMilliseconds(e) : null, record.UsesLeft ?? 0);
    }

    /// <summary>Every secret id that has not expired, by role, its seal verified (for reports).</summary>
    /// <exception cref="DataIntegrityException">A stored record was altered outside the vault.</exception>
    public IReadOnlyList<SecretIdRecord> ListSecretIds()
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        return store.List<SecretIdRecord>(Collections.SecretIds, "")
            .Select(entry => RecordSeal.Verified(Hmac, Collections.SecretIds, entry.Key, entry.Value, entry.Value.Canonical(), entry.Value.Seal))
            .Where(record => record.ExpiresAtUnixMs is not { } expires || expires > now)
            .ToList();
    }

    /// <summary>Destroys the secret id of role <paramref name="name"/> with <paramref name="accessor"/>: it can no longer log in.</summary>
    /// <exception cref="NotFoundException">No such role, or no such secret id of it.</exception>
    public async Task DestroySecretIdAsync(string name, string accessor, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(accessor) || accessor.Length > 64)
        {
            throw new ValidationException("accessor", "must be 1 to 64 characters");
        }
        await store.WriteAsync(tx =>
        {
            if (tx.Get<AppRoleRecord>(Collections.AppRoles, name) is null)
            {
                throw new NotFoundException($"no role named '{name}'");
            }
            var (id, _) = tx.List<SecretIdRecord>(Collections.SecretIds, name + "/").FirstOrDefault(entry => entry.Value.Accessor == accessor);
            if (id is null)
            {
                throw new NotFoundException($"role '{name}' has no secret id with accessor '{accessor}'");
            }
            tx.Delete(Collections.SecretIds, id);
            return true;
        }, cancellationToken);
        await usage.ForgetAsync([(Usage.UsageKind.SecretId, $"{name}/{accessor}")], cancellationToken);
    }

    /// <summary>Role id + secret id → a new orphan token with the role's policies.</summary>
    /// <exception cref="RateLimitedException">Too many recent failures for this role id.</exception>
    /// <exception cref="UnauthenticatedException">Wrong, expired or used-up secret id, unknown role id, or a source outside the bound networks.</exception>
    public async Task<(string Token, TokenRecord Record)> LoginAsync(string roleId, string secretId, IPAddress? source, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(roleId) || roleId.Length > 256)
        {
            throw new ValidationException("role_id", "must be 1 to 256 characters");
        }
        if (string.IsNullOrEmpty(secretId) || secretId.Length > 256)
        {
            throw new ValidationException("secret_id", "must be 1 to 256 characters");
        }
        // Role ids are 128-bit random: guessing one is hopeless, so only known roles are throttled.
        var name = store.Get<AppRoleIdRecord>(Collections.AppRoleIds, roleId)?.RoleName ?? throw new UnauthenticatedException(LoginRefused);
        throttle.Check(name);
        try
        {
            var (result, secretIdAccessor) = await LoginCheckedAsync(name, roleId, secretId, source, cancellationToken);
            throttle.Succeeded(name);
            usage.Used(Usage.UsageKind.SecretId, $"{name}/{secretIdAccessor}");
            return result;
        }
        catch (UnauthenticatedException)
        {
            throttle.Failed(name);
            throw;
        }
    }

    private async Task<((string Token, TokenRecord Record) Login, string SecretIdAccessor)> LoginCheckedAsync(string name, string roleId, string secretId, IPAddress? source, CancellationToken cancellationToken)
    {
        var role = LoadRole(store, name) ?? throw new UnauthenticatedException(LoginRefused);
        if (role.RoleId != roleId)
        {
            throw new UnauthenticatedException(LoginRefused);
        }
        if (role.BoundCidrs.Count > 0)
        {
            var address = source?.IsIPv4MappedToIPv6 == true ? source.MapToIPv4() : source;
            if (address is null || !role.BoundCidrs.Any(c => IPNetwork.Parse(c).Contains(address)))
            {
                throw new UnauthenticatedException("login refused: source address is outside the role's bound networks");
            }
        }
        var id = SecretIdKey(name, secretId);
        var token = TokenManager.NewToken();
        var tokenHash = TokenManager.HashWith(Hmac, token);
        // The login's audit entry commits with the token it issues, and names that token.
        var audit = Audit.AuditScope.Current;
        return await store.WriteAsync(tx =>
        {
            var record = tx.Get<SecretIdRecord>(Collections.SecretIds, id) ?? throw new UnauthenticatedException(LoginRefused);
            RecordSeal.Verify(Hmac, Collections.SecretIds, id, record.Canonical(), record.Seal);
            var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
            if (record.ExpiresAtUnixMs is { } expires && expires <= now)
            {
                tx.Delete(Collections.SecretIds, id);
                throw new UnauthenticatedException(LoginRefused);
            }
            if (record.UsesLeft is { } uses)
            {
                if (uses <= 1)
                {
                    tx.Delete(Collections.SecretIds, id);
                }
                else
                {
                    record.UsesLeft = uses - 1;
                    record.Seal = RecordSeal.Compute(Hmac, Collections.SecretIds, id, record.Canonical());
                    tx.Put(Collections.SecretIds, id, record);
                }
            }
            var tokenRecord = new TokenRecord
            {
                Accessor = TokenManager.NewAccessor(),
                Policies = role.Policies,
                DisplayName = $"approle-{name}",
                CreatedAtUnixMs = now,
                TtlSeconds = role.TokenTtlSeconds,
                ExpiresAtUnixMs = now + role.TokenTtlSeconds * 1000,
                MaxExpiresAtUnixMs = now + role.TokenMaxTtlSeconds * 1000,
            };
            TokenManager.Write(tx, Hmac, tokenHash, tokenRecord);
            if (audit is not null)
            {
                audit.Accessor = tokenRecord.Accessor;
            }
            return ((token, tokenRecord), record.Accessor);
        }, cancellationToken);
    }

    private AppRoleRecord? LoadRole(IStoreReader reader, string name)
    {
        var record = reader.Get<AppRoleRecord>(Collections.AppRoles, name);
        if (record is not null)
        {
            RecordSeal.Verify(Hmac, Collections.AppRoles, name, record.Canonical(), record.Seal);
        }
        return record;
    }

    private string SecretIdKey(string roleName, string secretId) =>
        roleName + "/" + Convert.ToHexStringLower(barrier.Hmac(HmacPurpose, Encoding.UTF8.GetBytes(secretId)));

    private byte[] Hmac(string purpose, byte[] value) => barrier.Hmac(purpose, value);
}
