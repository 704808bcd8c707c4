using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Vault.Rotators;
using Vault.Rotators.Passwords;
using Vault.Server.Auth;
using Vault.Server.Crypto;
using Vault.Server.Rotation;
using Vault.Server.Storage;

namespace Vault.Server.Leases;

/// <summary>
/// Dynamic roles and the leases on the users they make. A lease is written before its user is
/// created (so a crash can orphan a lease, which the reaper ends, but never a user), holds the
/// user's name and never its password, and ends by dropping the user; a drop that fails is
/// retried with backoff and, after <see cref="LeaseOptions.MaxRevokeAttempts"/>, marked
/// irrevocable for an admin.
/// </summary>
public sealed partial class LeaseManager(
    IVaultStore store,
    SecurityBarrier barrier,
    LeaseStore leases,
    TargetManager targets,
    RotatorRegistry rotators,
    TokenManager tokens,
    RotationEngine engine,
    TimeProvider clock,
    IOptions<RotationOptions> rotation,
    ILogger<LeaseManager> logger)
{
    private const int MaxStatements = 32;
    private const int MaxStatementLength = 4096;
    private readonly ConcurrentDictionary<string, bool> _revoking = new(StringComparer.Ordinal);

    // ---- roles ----

    public bool RoleExists(string name) => store.Get<DynamicRoleRecord>(Collections.DynamicRoles, name) is not null;

    /// <exception cref="ValidationException">A field is invalid; nothing is written.</exception>
    public async Task<DynamicRoleRecord> PutRoleAsync(string name, string target, IReadOnlyList<string> statements, TimeSpan? defaultTtl, TimeSpan? maxTtl, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(name, "role.name");
        if (string.IsNullOrEmpty(target))
        {
            throw new ValidationException("role.target", "is required: the rotation target whose connection and admin credential make the users");
        }
        var targetRecord = targets.TryGet(target) ?? throw new ValidationException("role.target", $"no target named '{target}'");
        if (!rotators.TryGet(targetRecord.Kind, out var rotator) || !rotator.SupportsEphemeralUsers)
        {
            throw new ValidationException("role.target", $"a '{targetRecord.Kind}' target cannot make users (postgres and mysql can)");
        }
        if (statements.Count > MaxStatements)
        {
            throw new ValidationException("role.creation_statements", $"must list at most {MaxStatements} statements");
        }
        for (var i = 0; i < statements.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(statements[i]) || statements[i].Length > MaxStatementLength || statements[i].Any(c => char.IsControl(c) && c is not ('\n' or '\t' or '\r')))
            {
                throw new ValidationException($"role.creation_statements[{i}]", $"must be a non-empty statement of at most {MaxStatementLength} characters");
            }
        }
        var (ttl, max) = LeaseTtls.Validate(defaultTtl, maxTtl, "role");
        var record = new DynamicRoleRecord
        {
            Target = target,
            CreationStatements = [.. statements],
            DefaultTtlSeconds = (long)ttl.TotalSeconds,
            MaxTtlSeconds = (long)max.TotalSeconds,
        };
        record.Seal = RecordSeal.Compute(Hmac, Collections.DynamicRoles, name, record.Canonical());
        await store.WriteAsync(tx =>
        {
            tx.Put(Collections.DynamicRoles, name, record);
            return true;
        }, cancellationToken);
        return record;
    }

    /// <exception cref="NotFoundException">No such role.</exception>
    public DynamicRoleRecord GetRole(string name)
    {
        PolicyStore.ValidateName(name, "role");
        var record = store.Get<DynamicRoleRecord>(Collections.DynamicRoles, name) ?? throw new NotFoundException($"no dynamic role named '{name}'");
        RecordSeal.Verify(Hmac, Collections.DynamicRoles, name, record.Canonical(), record.Seal);
        return record;
    }

    public IReadOnlyList<string> ListRoles() => [.. store.List<DynamicRoleRecord>(Collections.DynamicRoles, "").Select(r => r.Key)];

    /// <summary>Roles that make users on <paramref name="target"/>.</summary>
    public IReadOnlyList<string> RolesOn(string target) =>
        [.. store.List<DynamicRoleRecord>(Collections.DynamicRoles, "").Where(r => r.Value.Target == target).Select(r => r.Key)];

    /// <exception cref="PreconditionException">The role has live leases.</exception>
    public async Task DeleteRoleAsync(string name, CancellationToken cancellationToken)
    {
        GetRole(name);
        await store.WriteAsync(tx =>
        {
            if (LeaseStore.AnyUnder(tx, $"dynamic/{name}/"))
            {
                throw new PreconditionException($"dynamic role '{name}' has live leases; revoke them first (prefix dynamic/{name}/)");
            }
            tx.Delete(Collections.DynamicRoles, name);
            return true;
        }, cancellationToken);
    }

    // ---- leases ----

    /// <summary>Makes a user for <paramref name="roleName"/> under a new lease held by <paramref name="caller"/>.</summary>
    /// <exception cref="ValidationException">The TTL is over the role's max.</exception>
    /// <exception cref="UnavailableException">The database could not make the user (the lease is ended again).</exception>
    public async Task<(string LeaseId, LeaseRecord Lease, string Password)> IssueAsync(string roleName, TimeSpan? ttl, CallerContext caller, CancellationToken cancellationToken)
    {
        var role = GetRole(roleName);
        var max = TimeSpan.FromSeconds(role.MaxTtlSeconds);
        var lifetime = ttl ?? TimeSpan.FromSeconds(role.DefaultTtlSeconds);
        if (lifetime < TimeSpan.FromSeconds(1))
        {
            throw new ValidationException("ttl", "must be at least 1 s");
        }
        if (lifetime > max)
        {
            throw new ValidationException("ttl", $"is over the role's max TTL of {max}");
        }
        var target = targets.TryGet(role.Target) ?? throw new PreconditionException($"dynamic role '{roleName}' names target '{role.Target}', which no longer exists");
        var rotator = rotators.Get(target.Kind);
        var admin = targets.ReadAdminSecret(target.AdminSecret, "admin_secret");
        var now = clock.GetUtcNow();
        var leaseId = LeaseStore.NewId("dynamic/", roleName);
        var username = Username(roleName);
        var password = PasswordGenerator.Generate(TargetManager.Policy(target));
        var lease = new LeaseRecord
        {
            Role = roleName,
            Target = role.Target,
            Username = username,
            TokenAccessor = caller.Accessor,
            IssuedAtUnixMs = now.ToUnixTimeMilliseconds(),
            ExpiresAtUnixMs = (now + lifetime).ToUnixTimeMilliseconds(),
            MaxExpiresAtUnixMs = (now + max).ToUnixTimeMilliseconds(),
            State = LeaseStates.Creating,
        };
        // The lease first, as "creating": a crash after this leaves a lease the reaper ends
        // (dropping a user that may not exist), never a user nobody knows about; and nothing
        // ends a creating lease while its user is being made (a drop would miss the user).
        await leases.SaveAsync(leaseId, lease, cancellationToken);
        try
        {
            // The database's own expiry is the lease's latest possible end: renewals never pass it.
            await rotator.CreateEphemeralUserAsync(targets.Connection(target, rotation.Value), admin,
                new EphemeralUser(username, password, DateTimeOffset.FromUnixTimeMilliseconds(lease.MaxExpiresAtUnixMs), role.CreationStatements), cancellationToken);
        }
        catch (RotatorException ex)
        {
            if (ex.Failure == RotatorFailure.Unreachable)
            {
                // The connection broke: the user may exist. Leave the lease to the reaper to drop it.
                await leases.MarkRevokingAsync(leaseId, ex.Message, cancellationToken);
                throw new UnavailableException($"target '{role.Target}' is unreachable: {ex.Message}");
            }
            // The database refused: the rotators make the user and its grants all or nothing.
            await leases.DeleteAsync(leaseId, cancellationToken);
            throw new PreconditionException($"target '{role.Target}' refused to create the user: {ex.Message}");
        }
        lease = await store.WriteAsync(tx =>
        {
            var current = leases.Load(tx, leaseId) ?? throw new DataIntegrityException($"lease '{leaseId}' vanished while its user was created");
            current.State = LeaseStates.Active;
            leases.Save(tx, leaseId, current);
            return current;
        }, CancellationToken.None);
        LeaseLog.Issued(logger, leaseId, username, role.Target, DateTimeOffset.FromUnixTimeMilliseconds(lease.ExpiresAtUnixMs));
        return (leaseId, lease, password);
    }

    /// <summary>Extends an active lease to now + <paramref name="increment"/> (default: the role's TTL), never past its max.</summary>
    public async Task<LeaseRecord> RenewAsync(string leaseId, TimeSpan? increment, CancellationToken cancellationToken)
    {
        LeaseStore.ValidateLeaseId(leaseId);
        if (increment is { } inc && inc < TimeSpan.FromSeconds(1))
        {
            throw new ValidationException("increment", "must be at least 1 s");
        }
        return await store.WriteAsync(tx =>
        {
            var lease = leases.Load(tx, leaseId) ?? throw new NotFoundException($"no lease '{leaseId}'");
            var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
            if (lease.State != LeaseStates.Active || lease.ExpiresAtUnixMs <= now)
            {
                throw new PreconditionException($"lease '{leaseId}' has ended ({(lease.State == LeaseStates.Active ? "expired" : lease.State)})");
            }
            var defaultSeconds = leaseId.StartsWith(CheckoutPrefix, StringComparison.Ordinal)
                ? tx.Get<CheckoutSetRecord>(Collections.CheckoutSets, lease.Role)?.DefaultTtlSeconds
                : leaseId.StartsWith(StaticPrefix, StringComparison.Ordinal)
                    ? (long)LeaseTtls.DefaultTtl.TotalSeconds
                    : tx.Get<DynamicRoleRecord>(Collections.DynamicRoles, lease.Role)?.DefaultTtlSeconds;
            var step = increment ?? TimeSpan.FromSeconds(defaultSeconds ?? (long)LeaseTtls.DefaultTtl.TotalSeconds);
            lease.ExpiresAtUnixMs = Math.Min(now + (long)step.TotalMilliseconds, lease.MaxExpiresAtUnixMs);
            leases.Save(tx, leaseId, lease);
            return lease;
        }, cancellationToken);
    }

    /// <summary>Ends a lease now: drops its user, or marks it for retry when the database does not answer.</summary>
    /// <returns>The lease as it ended: <see cref="LeaseStates.Revoked"/>, or still revoking / irrevocable.</returns>
    public async Task<LeaseRecord> RevokeAsync(string leaseId, string why, CancellationToken cancellationToken)
    {
        LeaseStore.ValidateLeaseId(leaseId);
        var lease = leases.Load(leaseId) ?? throw new NotFoundException($"no lease '{leaseId}'");
        if (lease.State == LeaseStates.Creating)
        {
            throw new PreconditionException($"lease '{leaseId}' is still being created; try again in a moment");
        }
        return await TryRevokeAsync(leaseId, l => l.State is LeaseStates.Active or LeaseStates.Revoking or LeaseStates.Irrevocable ? why : null, cancellationToken)
            ?? leases.Load(leaseId) ?? lease;
    }

    public async Task<int> RevokePrefixAsync(string prefix, CancellationToken cancellationToken)
    {
        var count = 0;
        foreach (var (id, lease) in leases.List(prefix))
        {
            if (lease.State is LeaseStates.Active or LeaseStates.Revoking
                && await TryRevokeAsync(id, l => l.State is LeaseStates.Active or LeaseStates.Revoking ? "revoked by prefix" : null, cancellationToken) is not null)
            {
                count++;
            }
        }
        return count;
    }

    /// <summary>One reaper pass: ends expired leases and leases whose token is gone, retries due revocations.</summary>
    public async Task ReapAsync(CancellationToken cancellationToken)
    {
        // A cheap first look (no seal check, one liveness check per token) picks the candidates;
        // each is decided again on its verified record below.
        var live = new Dictionary<string, bool>(StringComparer.Ordinal);
        var due = leases.Unverified()
            .Where(l => DueReason(l.Value, accessor => live.TryGetValue(accessor, out var known) ? known : live[accessor] = tokens.IsLive(accessor)) is not null)
            .Select(l => l.Key)
            .ToList();
        foreach (var id in due)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                // Decided again on the lease as it is now (under the revocation guard): the
                // snapshot above may be stale by the time this lease's turn comes.
                await TryRevokeAsync(id, DueReason, cancellationToken);
            }
            catch (DataIntegrityException)
            {
                // Altered outside the vault: shown by Lookup as DATA_LOSS, never acted on.
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // One bad lease (a damaged record, an odd failure) must not stop the pass.
                LeaseLog.ReaperFailed(logger, ex);
            }
        }
    }

    /// <summary>Why the reaper should end this lease now, or null.</summary>
    private string? DueReason(LeaseRecord lease) => DueReason(lease, tokens.IsLive);

    private string? DueReason(LeaseRecord lease, Func<string, bool> isLive)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        return lease.State switch
        {
            LeaseStates.Active when lease.ExpiresAtUnixMs <= now => "expired",
            LeaseStates.Active when !isLive(lease.TokenAccessor) => "its token was revoked or expired",
            LeaseStates.Revoking when (lease.NextAttemptAtUnixMs ?? 0) <= now => "retrying revocation",
            // Being created when the server died: whatever was made is dropped.
            LeaseStates.Creating when lease.IssuedAtUnixMs + (long)CreatingTimeout.TotalMilliseconds <= now => "its creation never finished",
            _ => null,
        };
    }

    /// <summary>How long a user's creation may take before its lease is treated as abandoned (a crash mid-create).</summary>
    private TimeSpan CreatingTimeout => rotation.Value.ConnectTimeout * 6 + TimeSpan.FromMinutes(1);

    /// <summary>
    /// Ends a lease if <paramref name="reason"/> (given the lease as stored now) says so. One
    /// attempt per lease at a time; a lease already gone is left alone.
    /// </summary>
    /// <returns>The lease as it ended, or null when nothing was done.</returns>
    private async Task<LeaseRecord?> TryRevokeAsync(string leaseId, Func<LeaseRecord, string?> reason, CancellationToken cancellationToken)
    {
        if (!_revoking.TryAdd(leaseId, true))
        {
            return null;
        }
        try
        {
            var lease = leases.Load(leaseId);
            if (lease is null || reason(lease) is not { } why)
            {
                return null;
            }
            string failure;
            try
            {
                if (leaseId.StartsWith(CheckoutPrefix, StringComparison.Ordinal))
                {
                    return await CheckInAsync(leaseId, lease, why, cancellationToken);
                }
                if (leaseId.StartsWith(StaticPrefix, StringComparison.Ordinal))
                {
                    return await EndStaticAsync(leaseId, lease, why, cancellationToken);
                }
                var target = targets.TryGet(lease.Target) ?? throw new PreconditionException($"target '{lease.Target}' no longer exists");
                var rotator = rotators.Get(target.Kind);
                var admin = targets.ReadAdminSecret(target.AdminSecret, "admin_secret");
                await rotator.RevokeEphemeralUserAsync(targets.Connection(target, rotation.Value), admin, lease.Username, cancellationToken);
                await leases.DeleteAsync(leaseId, cancellationToken);
                LeaseLog.Revoked(logger, leaseId, lease.Username, why);
                lease.State = LeaseStates.Revoked;
                return lease;
            }
            catch (Exception ex) when (ex is RotatorException or ValidationException or PreconditionException or KeyNotFoundException or NotFoundException or ArgumentException)
            {
                failure = ex.Message;
            }
            return await leases.RecordRevokeFailureAsync(leaseId, lease, failure, cancellationToken);
        }
        finally
        {
            _revoking.TryRemove(leaseId, out _);
        }
    }

    private static string Username(string role)
    {
        var stem = new string([.. role.ToLowerInvariant().Where(c => char.IsAsciiLetterOrDigit(c) || c == '_').Take(10)]);
        return $"v_{stem}_{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}";
    }

    private byte[] Hmac(string purpose, byte[] value) => barrier.Hmac(purpose, value);
}
