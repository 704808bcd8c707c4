namespace Vault.Server.Identity;

/// <summary>A grant an admin defines (keyed by name), sealed: editing the data file must not widen what it confers or who approves.</summary>
public sealed class GrantRecord
{
    public List<string> Policies { get; set; } = [];
    public long MaxDurationSeconds { get; set; }
    public string ApproverGroup { get; set; } = "";
    public int ApprovalsRequired { get; set; }
    public bool MfaToRequest { get; set; }
    public bool MfaToApprove { get; set; }
    public long RequestTtlSeconds { get; set; }
    public bool Emergency { get; set; }
    public byte[]? Seal { get; set; }

    internal string Canonical() =>
        $"{string.Join(',', Policies)}\n{MaxDurationSeconds}\n{ApproverGroup}\n{ApprovalsRequired}\n{MfaToRequest}\n{MfaToApprove}\n{RequestTtlSeconds}\n{Emergency}";
}

/// <summary>A request for a grant (keyed by its id) and its course: approvals, activation, end.</summary>
public sealed class AccessRequestRecord
{
    public string Grant { get; set; } = "";
    public string Requester { get; set; } = "";
    public string RequesterId { get; set; } = "";
    public string Reason { get; set; } = "";
    public long DurationSeconds { get; set; }
    public string State { get; set; } = AccessRequestStates.Pending;
    public long CreatedAtUnixMs { get; set; }
    public long ExpiresAtUnixMs { get; set; }
    public int ApprovalsRequired { get; set; }
    public List<ApprovalRecord> Approvals { get; set; } = [];
    public long? ActiveFromUnixMs { get; set; }
    public long? EndsAtUnixMs { get; set; }
    public string ClosedBy { get; set; } = "";
    public string Comment { get; set; } = "";
    /// <summary>The grant's policies when the request was made: a later change of the grant does not change what an approver saw.</summary>
    public List<string> Policies { get; set; } = [];
    public bool Emergency { get; set; }
    public byte[]? Seal { get; set; }

    internal string Canonical() =>
        $"{Grant}\n{Requester}\n{RequesterId}\n{Reason.Length}:{Reason}\n{DurationSeconds}\n{State}\n{CreatedAtUnixMs}\n{ExpiresAtUnixMs}\n{ApprovalsRequired}\n"
        + string.Join(';', Approvals.Select(a => $"{a.Entity}/{a.EntityId}@{a.AtUnixMs}:{a.Comment.Length}:{a.Comment}"))
        + $"\n{ActiveFromUnixMs}\n{EndsAtUnixMs}\n{ClosedBy}\n{Comment.Length}:{Comment}\n{string.Join(',', Policies)}\n{Emergency}";
}

/// <summary>One approver's approval.</summary>
public sealed class ApprovalRecord
{
    public string Entity { get; set; } = "";
    public string EntityId { get; set; } = "";
    public long AtUnixMs { get; set; }
    public string Comment { get; set; } = "";
}

/// <summary>A grant in effect for an entity, kept on the entity (sealed with it) so a token's policies are found with the entity.</summary>
public sealed class ActiveGrantRecord
{
    public string RequestId { get; set; } = "";
    public List<string> Policies { get; set; } = [];
    public long EndsAtUnixMs { get; set; }
}

/// <summary>
/// Marks a request that is pending or active (keyed by its id), so the reaper's pass reads only
/// those, not every request ever made. Not sealed: it grants nothing — an active grant's end is
/// enforced on the entity, and a pending request's expiry when it is answered, whatever this says.
/// </summary>
public sealed class OpenRequestRecord
{
    public long OpenedAtUnixMs { get; set; }
}

/// <summary>The states of an access request.</summary>
public static class AccessRequestStates
{
    public const string Pending = "pending";
    public const string Active = "active";
    public const string Denied = "denied";
    public const string Expired = "expired";
    public const string Ended = "ended";
    public const string Revoked = "revoked";
}
