using System.Security.Cryptography;
using Vault.Server.Auth;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Identity;

/// <summary>What a grant is, as an admin writes it.</summary>
public sealed record GrantSpec(string Name, IReadOnlyList<string> Policies, TimeSpan? MaxDuration, string ApproverGroup, int ApprovalsRequired,
    bool MfaToRequest, bool MfaToApprove, TimeSpan? RequestTtl, bool Emergency);

/// <summary>Who acts on a request: a person's token (its entity, and when it last saw an MFA code).</summary>
public sealed record Actor(string Entity, string EntityId, long? MfaAtUnixMs)
{
    public static Actor Of(TokenRecord token) =>
        token.EntityId.Length > 0
            ? new(token.Entity, token.EntityId, token.MfaAtUnixMs)
            : throw new PreconditionException("access requests are for people: this token does not act for an entity (log in with vaultctl login)");
}

/// <summary>
/// Just-in-time access: grants, the requests for them, approvals by distinct members of the
/// grant's approver group (never the requester), and their end. An approved request puts the
/// grant's policies on the requester's entity (<see cref="EntityRecord.ActiveGrants"/>) until its
/// end, which <see cref="Identities.PoliciesOf"/> honours on the vault's clock whatever the
/// reaper does; <see cref="ReapAsync"/> records ends and expiries (the lease reaper runs it).
/// </summary>
public sealed class AccessRequests(IVaultStore store, SecurityBarrier barrier, PolicyStore policies, Identities identities, Audit.AuditLog audit, Telemetry.VaultMetrics metrics, Telemetry.Events.SecurityEvents events, TimeProvider clock) : IReaperPass
{
    public static readonly TimeSpan MaxDuration = TimeSpan.FromDays(30);
    public static readonly TimeSpan MaxEmergencyDuration = TimeSpan.FromHours(1);
    public static readonly TimeSpan DefaultRequestTtl = TimeSpan.FromHours(24);
    /// <summary>How recent an MFA validation a grant that asks for one needs.</summary>
    public static readonly TimeSpan FreshMfa = TimeSpan.FromMinutes(5);
    public const string BreakGlassEvent = "break-glass";

    /// <summary>Raised after a request was created or changed (committed): watchers read the requests again.</summary>
    public event Action? Changed;

    public bool GrantExists(string name) => store.Get<GrantRecord>(Collections.Grants, name) is not null;

    /// <summary>The entity id of a request's requester (its seal verified: the access table decides on it), or null when there is no such request.</summary>
    public string? RequesterOf(string id) =>
        RecordSeal.Read<AccessRequestRecord>(store, Hmac, Collections.AccessRequests, ValidateId(id), r => r.Canonical(), r => r.Seal)?.RequesterId;

    public async Task<GrantRecord> PutGrantAsync(GrantSpec spec, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(spec.Name, "grant.name");
        var named = policies.ValidateExisting(spec.Policies, "grant.policies");
        if (named.Count == 0)
        {
            throw new ValidationException("grant.policies", "must name at least one policy");
        }
        var limit = spec.Emergency ? MaxEmergencyDuration : MaxDuration;
        var max = spec.MaxDuration ?? limit;
        if (max < TimeSpan.FromMinutes(1) || max > limit)
        {
            throw new ValidationException("grant.max_duration", $"must be between 1 minute and {(spec.Emergency ? "1 hour for an emergency grant" : "30 days")}");
        }
        var ttl = spec.RequestTtl ?? DefaultRequestTtl;
        if (ttl < TimeSpan.FromMinutes(1) || ttl > TimeSpan.FromDays(7))
        {
            throw new ValidationException("grant.request_ttl", "must be between 1 minute and 7 days");
        }
        if (spec.Emergency)
        {
            if (spec.ApprovalsRequired != 0)
            {
                throw new ValidationException("grant.approvals_required", "must be 0 for an emergency grant: it needs no approval");
            }
        }
        else
        {
            if (spec.ApprovalsRequired is < 1 or > 16)
            {
                throw new ValidationException("grant.approvals_required", "must be between 1 and 16");
            }
            PolicyStore.ValidateName(spec.ApproverGroup, "grant.approver_group");
            if (!identities.GroupExists(spec.ApproverGroup))
            {
                throw new ValidationException("grant.approver_group", $"no group named '{spec.ApproverGroup}'");
            }
        }
        var record = new GrantRecord
        {
            Policies = named,
            MaxDurationSeconds = (long)max.TotalSeconds,
            ApproverGroup = spec.Emergency ? "" : spec.ApproverGroup,
            ApprovalsRequired = spec.ApprovalsRequired,
            // Break-glass always needs MFA.
            MfaToRequest = spec.MfaToRequest || spec.Emergency,
            MfaToApprove = spec.MfaToApprove,
            RequestTtlSeconds = (long)ttl.TotalSeconds,
            Emergency = spec.Emergency,
        };
        return await store.WriteAsync(tx =>
        {
            record.Seal = RecordSeal.Compute(Hmac, Collections.Grants, spec.Name, record.Canonical());
            tx.Put(Collections.Grants, spec.Name, record);
            return record;
        }, cancellationToken);
    }

    public GrantRecord GetGrant(string name)
    {
        PolicyStore.ValidateName(name);
        return RecordSeal.Read<GrantRecord>(store, Hmac, Collections.Grants, name, g => g.Canonical(), g => g.Seal) ?? throw new NotFoundException($"no grant named '{name}'");
    }

    public IReadOnlyList<string> ListGrants() => store.List<GrantRecord>(Collections.Grants, "").Select(p => p.Key).ToList();

    public Task DeleteGrantAsync(string name, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(name);
        return store.WriteAsync(tx =>
        {
            if (tx.Get<GrantRecord>(Collections.Grants, name) is null)
            {
                throw new NotFoundException($"no grant named '{name}'");
            }
            tx.Delete(Collections.Grants, name);
            return true;
        }, cancellationToken);
    }

    /// <summary>A person asks for a grant; an emergency grant is active at once.</summary>
    /// <returns>The request and its id.</returns>
    public async Task<(string Id, AccessRequestRecord Request)> CreateAsync(Actor actor, string grantName, string reason, TimeSpan? duration, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(grantName, "grant");
        if (string.IsNullOrWhiteSpace(reason) || reason.Length > 1024 || reason.Any(char.IsControl))
        {
            throw new ValidationException("reason", "must be 1 to 1024 printable characters: say why");
        }
        var grant = GetGrant(grantName);
        var length = duration ?? TimeSpan.FromSeconds(grant.MaxDurationSeconds);
        if (length < TimeSpan.FromMinutes(1) || length > TimeSpan.FromSeconds(grant.MaxDurationSeconds))
        {
            throw new ValidationException("duration", $"must be between 1 minute and the grant's maximum, {TimeSpan.FromSeconds(grant.MaxDurationSeconds)}");
        }
        if (grant.MfaToRequest)
        {
            RequireFreshMfa(actor, $"grant '{grantName}' needs an MFA code validated within {FreshMfa.TotalMinutes:0} minutes to be requested (vaultctl mfa validate)");
        }
        var id = "ar_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        var audit = Audit.AuditScope.Current;
        var request = await store.WriteAsync(tx =>
        {
            var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
            var request = new AccessRequestRecord
            {
                Grant = grantName,
                Requester = actor.Entity,
                RequesterId = actor.EntityId,
                Reason = reason,
                DurationSeconds = (long)length.TotalSeconds,
                CreatedAtUnixMs = now,
                ExpiresAtUnixMs = now + grant.RequestTtlSeconds * 1000,
                ApprovalsRequired = grant.ApprovalsRequired,
                Policies = grant.Policies,
                Emergency = grant.Emergency,
            };
            tx.Put(Collections.OpenAccessRequests, id, new OpenRequestRecord { OpenedAtUnixMs = now });
            if (grant.Emergency)
            {
                Activate(tx, id, request, now);
                if (audit is not null)
                {
                    audit.Event = BreakGlassEvent;
                }
            }
            PutRequest(tx, id, request);
            return request;
        }, cancellationToken);
        if (request.Emergency)
        {
            metrics.BreakGlassUsed();
            Publish(Telemetry.Events.SecurityEventTypes.BreakGlass, id, request, by: "");
        }
        Changed?.Invoke();
        return (id, request);
    }

    public AccessRequestRecord GetRequest(string id) =>
        RecordSeal.Read<AccessRequestRecord>(store, Hmac, Collections.AccessRequests, ValidateId(id), r => r.Canonical(), r => r.Seal) ?? throw new NotFoundException($"no access request '{id}'");

    public IReadOnlyList<(string Id, AccessRequestRecord Request)> ListRequests(string state)
    {
        if (state.Length > 0 && state is not (AccessRequestStates.Pending or AccessRequestStates.Active or AccessRequestStates.Denied
            or AccessRequestStates.Expired or AccessRequestStates.Ended or AccessRequestStates.Revoked))
        {
            throw new ValidationException("state", "must be pending, active, denied, expired, ended or revoked");
        }
        return store.List<AccessRequestRecord>(Collections.AccessRequests, "")
            .Select(p => (p.Key, RecordSeal.Verified(Hmac, Collections.AccessRequests, p.Key, p.Value, p.Value.Canonical(), p.Value.Seal)))
            .Where(p => state.Length == 0 || p.Item2.State == state)
            .ToList();
    }

    /// <summary>An approver approves; at enough distinct approvals the grant is in effect at once.</summary>
    /// <exception cref="AccessDeniedException">The caller is the requester, or not an approver of the grant.</exception>
    /// <exception cref="PreconditionException">The request is not pending (or expired meanwhile).</exception>
    public Task<AccessRequestRecord> ApproveAsync(Actor actor, string id, string comment, CancellationToken cancellationToken) =>
        AnswerAsync(actor, id, comment, approve: true, cancellationToken);

    /// <summary>An approver denies; the request is closed.</summary>
    public Task<AccessRequestRecord> DenyAsync(Actor actor, string id, string comment, CancellationToken cancellationToken) =>
        AnswerAsync(actor, id, comment, approve: false, cancellationToken);

    /// <summary>Ends an active grant at once, or withdraws a pending request.</summary>
    public async Task<AccessRequestRecord> RevokeAsync(string by, string id, string comment, CancellationToken cancellationToken)
    {
        ValidateComment(comment);
        var revoked = await store.WriteAsync(tx =>
        {
            var request = RecordSeal.Read<AccessRequestRecord>(tx, Hmac, Collections.AccessRequests, ValidateId(id), r => r.Canonical(), r => r.Seal)
                ?? throw new NotFoundException($"no access request '{id}'");
            if (request.State is not (AccessRequestStates.Pending or AccessRequestStates.Active))
            {
                throw new PreconditionException($"access request '{id}' is {request.State}: there is nothing to revoke");
            }
            Close(tx, id, request, AccessRequestStates.Revoked, by, comment);
            return request;
        }, cancellationToken);
        Changed?.Invoke();
        Publish(Telemetry.Events.SecurityEventTypes.RequestRevoked, id, revoked, by);
        return revoked;
    }

    /// <inheritdoc/>
    public async Task ReapAsync(CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var (id, _) in store.List<OpenRequestRecord>(Collections.OpenAccessRequests, ""))
        {
            var request = RecordSeal.Read<AccessRequestRecord>(store, Hmac, Collections.AccessRequests, id, r => r.Canonical(), r => r.Seal);
            if (request is null || request.State is not (AccessRequestStates.Pending or AccessRequestStates.Active))
            {
                await store.WriteAsync(tx =>
                {
                    tx.Delete(Collections.OpenAccessRequests, id);
                    return true;
                }, cancellationToken);
                continue;
            }
            var due = request.State switch
            {
                AccessRequestStates.Pending when request.ExpiresAtUnixMs <= now => AccessRequestStates.Expired,
                AccessRequestStates.Active when request.EndsAtUnixMs <= now => AccessRequestStates.Ended,
                _ => null,
            };
            if (due is null)
            {
                continue;
            }
            var closed = await store.WriteAsync(tx =>
            {
                // Read again: an approval or a revoke may have come first.
                var current = RecordSeal.Read<AccessRequestRecord>(tx, Hmac, Collections.AccessRequests, id, r => r.Canonical(), r => r.Seal);
                if (current is null || current.State != request.State)
                {
                    return false;
                }
                Close(tx, id, current, due, "", "");
                return true;
            }, cancellationToken);
            if (closed)
            {
                Changed?.Invoke();
                try
                {
                    // The vault's own step, audited like the people's: whose grant ended, or whose request expired.
                    await audit.AppendAsync(new Audit.AuditEvent(Guid.NewGuid().ToString("N"), "system:access", $"access.{due}", $"access/request/{id}", "ok", "", "",
                        request.Requester, request.RequesterId));
                }
                catch (Audit.AuditUnavailableException)
                {
                    // The request is closed; the audit log reports its own failure.
                }
            }
        }
    }

    private async Task<AccessRequestRecord> AnswerAsync(Actor actor, string id, string comment, bool approve, CancellationToken cancellationToken)
    {
        ValidateComment(comment);
        var answered = await store.WriteAsync(tx =>
        {
            var request = RecordSeal.Read<AccessRequestRecord>(tx, Hmac, Collections.AccessRequests, ValidateId(id), r => r.Canonical(), r => r.Seal)
                ?? throw new NotFoundException($"no access request '{id}'");
            var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
            if (request.State != AccessRequestStates.Pending || request.ExpiresAtUnixMs <= now)
            {
                throw new PreconditionException($"access request '{id}' is {(request.State == AccessRequestStates.Pending ? AccessRequestStates.Expired : request.State)}: it takes no more answers");
            }
            if (request.RequesterId == actor.EntityId)
            {
                throw new AccessDeniedException("nobody approves or denies their own request");
            }
            var grant = RecordSeal.Read<GrantRecord>(tx, Hmac, Collections.Grants, request.Grant, g => g.Canonical(), g => g.Seal)
                ?? throw new PreconditionException($"grant '{request.Grant}' was deleted: the request can only be revoked");
            var approver = identities.EntityIn(tx, actor.Entity);
            if (approver is null || approver.EntityId != actor.EntityId || approver.Disabled || !approver.Groups.Contains(grant.ApproverGroup))
            {
                throw new AccessDeniedException($"only members of group '{grant.ApproverGroup}' answer requests for grant '{request.Grant}'");
            }
            if (grant.MfaToApprove)
            {
                RequireFreshMfa(actor, $"grant '{request.Grant}' needs an MFA code validated within {FreshMfa.TotalMinutes:0} minutes to be answered (vaultctl mfa validate)");
            }
            if (!approve)
            {
                Close(tx, id, request, AccessRequestStates.Denied, actor.Entity, comment);
                return request;
            }
            if (request.Approvals.Any(a => a.EntityId == actor.EntityId))
            {
                return request; // Each approver counts once.
            }
            request.Approvals.Add(new ApprovalRecord { Entity = actor.Entity, EntityId = actor.EntityId, AtUnixMs = now, Comment = comment });
            if (request.Approvals.Count >= request.ApprovalsRequired)
            {
                Activate(tx, id, request, now);
            }
            PutRequest(tx, id, request);
            return request;
        }, cancellationToken);
        Changed?.Invoke();
        // The request was pending: it is active now only if this approval was the last one needed.
        if (answered.State == (approve ? AccessRequestStates.Active : AccessRequestStates.Denied))
        {
            Publish(approve ? Telemetry.Events.SecurityEventTypes.RequestApproved : Telemetry.Events.SecurityEventTypes.RequestDenied, id, answered, actor.Entity);
        }
        return answered;
    }

    /// <summary>The security event of a request's step: who and which grant, never the reason or comment (free text).</summary>
    private void Publish(string type, string id, AccessRequestRecord request, string by) =>
        events.Publish(type, ("request_id", id), ("grant", request.Grant), ("requester", request.Requester), ("by", by),
            ("duration_seconds", request.DurationSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>Puts the grant in effect for the requester's entity, from <paramref name="now"/> for its duration.</summary>
    private void Activate(IStoreWriter tx, string id, AccessRequestRecord request, long now)
    {
        var requester = identities.EntityIn(tx, request.Requester);
        if (requester is null || requester.EntityId != request.RequesterId)
        {
            throw new PreconditionException($"the requester '{request.Requester}' no longer exists");
        }
        request.State = AccessRequestStates.Active;
        request.ActiveFromUnixMs = now;
        request.EndsAtUnixMs = now + request.DurationSeconds * 1000;
        requester.ActiveGrants = [.. requester.ActiveGrants.Where(g => g.EndsAtUnixMs > now), new ActiveGrantRecord { RequestId = id, Policies = request.Policies, EndsAtUnixMs = request.EndsAtUnixMs.Value }];
        identities.PutEntity(tx, request.Requester, requester);
    }

    /// <summary>Closes a request in <paramref name="state"/>; an active one's policies leave the requester's entity.</summary>
    private void Close(IStoreWriter tx, string id, AccessRequestRecord request, string state, string by, string comment)
    {
        if (request.State == AccessRequestStates.Active && identities.EntityIn(tx, request.Requester) is { } requester && requester.EntityId == request.RequesterId)
        {
            requester.ActiveGrants = requester.ActiveGrants.Where(g => g.RequestId != id).ToList();
            identities.PutEntity(tx, request.Requester, requester);
        }
        if (state == AccessRequestStates.Revoked && request.State == AccessRequestStates.Active)
        {
            request.EndsAtUnixMs = Math.Min(request.EndsAtUnixMs ?? long.MaxValue, clock.GetUtcNow().ToUnixTimeMilliseconds());
        }
        request.State = state;
        request.ClosedBy = by;
        request.Comment = comment;
        PutRequest(tx, id, request);
        tx.Delete(Collections.OpenAccessRequests, id);
    }

    private void RequireFreshMfa(Actor actor, string reason)
    {
        if (actor.MfaAtUnixMs is not { } at || clock.GetUtcNow().ToUnixTimeMilliseconds() - at > (long)FreshMfa.TotalMilliseconds)
        {
            throw new MfaRequiredException(reason);
        }
    }

    private static readonly System.Buffers.SearchValues<char> HexDigits = System.Buffers.SearchValues.Create("0123456789abcdef");

    /// <summary>
    /// A request id is "ar_" and 24 hex digits. Checked before it reaches a resource path, an error
    /// message or the audit log.
    /// </summary>
    /// <exception cref="ValidationException">Not a request id.</exception>
    public static string ValidateId(string? id) =>
        id is { Length: 27 } && id.StartsWith("ar_", StringComparison.Ordinal) && !id.AsSpan(3).ContainsAnyExcept(HexDigits)
            ? id
            : throw new ValidationException("id", "is not an access request id (ar_ and 24 hex digits)");

    private static void ValidateComment(string comment)
    {
        if (comment.Length > 1024 || comment.Any(char.IsControl))
        {
            throw new ValidationException("comment", "must be at most 1024 printable characters");
        }
    }

    private void PutRequest(IStoreWriter tx, string id, AccessRequestRecord request)
    {
        request.Seal = RecordSeal.Compute(Hmac, Collections.AccessRequests, id, request.Canonical());
        tx.Put(Collections.AccessRequests, id, request);
    }

    private byte[] Hmac(string purpose, byte[] value) => barrier.Hmac(purpose, value);
}
