using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Vault.Rotators;
using Vault.Rotators.Passwords;
using Vault.Server.Auth;
using Vault.Server.Idempotency;
using Vault.Server.Rotation;
using Vault.Server.Storage;

namespace Vault.Server.Leases;

/// <summary>
/// Leases on the users dynamic roles make. A lease is written before its user is created (so a
/// crash can orphan a lease, which the reaper ends, but never a user), holds the user's name and
/// never its password, and ends by dropping the user. Renewal, revocation and the reaper are
/// shared by every kind of lease (<see cref="LeaseLifecycle"/>); this class says what issuing
/// and ending mean for a dynamic user.
/// </summary>
public sealed class DynamicLeases(
    DynamicRoles roles,
    LeaseStore leases,
    TargetManager targets,
    RotatorRegistry rotators,
    TimeProvider clock,
    IOptions<RotationOptions> rotation,
    ILogger<DynamicLeases> logger)
{
    /// <summary>The start of every dynamic lease id: <c>dynamic/&lt;role&gt;/&lt;24 hex digits&gt;</c>.</summary>
    public const string Prefix = "dynamic/";

    /// <summary>Makes a user for <paramref name="roleName"/> under a new lease held by <paramref name="caller"/>.</summary>
    /// <exception cref="ValidationException">The TTL is over the role's max.</exception>
    /// <exception cref="UnavailableException">The database could not make the user (the lease is ended again).</exception>
    public async Task<(string LeaseId, LeaseRecord Lease, string Password)> IssueAsync(string roleName, TimeSpan? ttl, CallerContext caller, CancellationToken cancellationToken)
    {
        if (leases.AnsweredBefore(LeaseJson.Default.ValueTupleStringLeaseRecordString, out var prior))
        {
            // The client's repeat of a keyed issue: the credential it was issued, and no second user.
            leases.RequireStillActive(prior.Item1);
            return prior;
        }
        var role = roles.Get(roleName);
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
        var leaseId = LeaseStore.NewId(Prefix, roleName);
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
            if (ex.Failure == RotatorFailure.Unreachable || ex.Effect == RotatorEffect.Unknown)
            {
                // The connection broke: the user may exist. Leave the lease to the reaper to drop it.
                await leases.MarkRevokingAsync(leaseId, ex.Message, cancellationToken);
                throw new UnavailableException(ex.Failure == RotatorFailure.Unreachable
                    ? $"target '{role.Target}' is unreachable: {ex.Message}"
                    : $"target '{role.Target}': whether the user was made is unknown ({ex.Message}); its lease is ended");
            }
            // The database refused: the rotators make the user and its grants all or nothing.
            await leases.DeleteAsync(leaseId, cancellationToken);
            throw new PreconditionException($"target '{role.Target}' refused to create the user: {ex.Message}");
        }
        // The answer is recorded with the lease made active, for a keyed client's repeat.
        (string LeaseId, LeaseRecord Lease, string Password) issued = await leases.WriteAsync(IdempotentCall.Once(tx =>
        {
            var current = leases.Load(tx, leaseId) ?? throw new DataIntegrityException($"lease '{leaseId}' vanished while its user was created");
            current.State = LeaseStates.Active;
            leases.Save(tx, leaseId, current);
            return (leaseId, current, password);
        }, LeaseJson.Default.ValueTupleStringLeaseRecordString), CancellationToken.None);
        if (issued.LeaseId != leaseId)
        {
            // A repeat of this keyed call, sent while it ran, was answered first: the client holds
            // that credential, so this one's user is dropped at once.
            await leases.MarkRevokingAsync(leaseId, "issued twice for one idempotency key; the other credential was answered", CancellationToken.None);
            return issued;
        }
        LeaseLog.Issued(logger, leaseId, username, role.Target, DateTimeOffset.FromUnixTimeMilliseconds(issued.Lease.ExpiresAtUnixMs));
        return issued;
    }

    /// <summary>
    /// How long a user's creation may take before its lease is treated as abandoned (a crash
    /// mid-create): long enough for the rotator's connection attempts, so the reaper never drops
    /// a user that is still being made.
    /// </summary>
    internal TimeSpan CreatingTimeout => rotation.Value.ConnectTimeout * 6 + TimeSpan.FromMinutes(1);

    /// <summary>A renewal's step when the caller names none: the role's default TTL as stored now (null when the role is gone).</summary>
    /// <exception cref="DataIntegrityException">The role's record was altered outside the vault.</exception>
    internal TimeSpan? RenewalStep(IStoreReader reader, LeaseRecord lease) => roles.DefaultTtl(reader, lease.Role);

    /// <summary>Ends the lease by dropping its user; the caller records a failure for a retry.</summary>
    internal async Task<LeaseRecord> DropUserAsync(string leaseId, LeaseRecord lease, string why, CancellationToken cancellationToken)
    {
        var target = targets.TryGet(lease.Target) ?? throw new PreconditionException($"target '{lease.Target}' no longer exists");
        var rotator = rotators.Get(target.Kind);
        var admin = targets.ReadAdminSecret(target.AdminSecret, "admin_secret");
        await rotator.RevokeEphemeralUserAsync(targets.Connection(target, rotation.Value), admin, lease.Username, cancellationToken);
        await leases.DeleteAsync(leaseId, cancellationToken);
        LeaseLog.Revoked(logger, leaseId, lease.Username, why);
        lease.State = LeaseStates.Revoked;
        return lease;
    }

    /// <summary>
    /// Ends many leases of one target by dropping their users together (a storm of leases ending
    /// at once): one call to the rotator, and the leases of the users now gone deleted in one commit.
    /// </summary>
    /// <returns>The leases not ended, each with why (the caller records the failure for a retry).</returns>
    internal async Task<IReadOnlyDictionary<string, string>> DropUsersAsync(string targetName, IReadOnlyList<(string Id, LeaseRecord Lease, string Why)> ending, CancellationToken cancellationToken)
    {
        var target = targets.TryGet(targetName);
        if (target is null)
        {
            return ending.ToDictionary(e => e.Id, _ => $"target '{targetName}' no longer exists", StringComparer.Ordinal);
        }
        var rotator = rotators.Get(target.Kind);
        var admin = targets.ReadAdminSecret(target.AdminSecret, "admin_secret");
        var refused = await rotator.RevokeEphemeralUsersAsync(targets.Connection(target, rotation.Value), admin, [.. ending.Select(e => e.Lease.Username)], cancellationToken);
        var failures = new Dictionary<string, string>(StringComparer.Ordinal);
        var gone = new List<string>();
        foreach (var (id, lease, _) in ending)
        {
            if (refused.TryGetValue(lease.Username, out var why))
            {
                failures[id] = why;
            }
            else
            {
                gone.Add(id);
            }
        }
        await leases.DeleteAllAsync(gone, cancellationToken);
        foreach (var (id, lease, why) in ending)
        {
            if (!failures.ContainsKey(id))
            {
                LeaseLog.Revoked(logger, id, lease.Username, why);
            }
        }
        return failures;
    }

    private static string Username(string role)
    {
        var stem = new string([.. role.ToLowerInvariant().Where(c => char.IsAsciiLetterOrDigit(c) || c == '_').Take(10)]);
        return $"v_{stem}_{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}";
    }
}
