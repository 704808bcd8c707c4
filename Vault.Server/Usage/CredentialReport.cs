using Vault.Server.Auth;
using Vault.Server.Identity;
using Vault.Server.Leases;
using Vault.Server.Rotation;
using Vault.Server.Secrets;

namespace Vault.Server.Usage;

/// <summary>One line of the report. <see cref="Id"/> names the item for the command that acts on it; never a secret.</summary>
public sealed record ReportItem(string Kind, string Id, string Reason, DateTimeOffset? CreatedAt, DateTimeOffset? LastUsedAt, string Detail, bool Prunable);

/// <summary>The report, and what it was made with.</summary>
public sealed record CredentialReportResult(
    DateTimeOffset GeneratedAt, TimeSpan UnusedFor, TimeSpan CheckedOutFor, DateTimeOffset TrackedSince, TimeSpan Precision, IReadOnlyList<ReportItem> Items);

/// <summary>
/// The zombie-credential report: what nobody uses any more, and what is overdue, failing or held
/// too long. An item counts as unused when it is older than the period (or than the start of
/// tracking, for items made before it) and its last known use is older too. Only tokens and
/// AppRole secret ids are prunable — credentials the vault issued and can revoke without losing
/// data; secrets, targets, leases and people are listed for a person to decide.
/// </summary>
public sealed class CredentialReports(
    UsageTracker usage, TokenManager tokens, AppRoleManager approles, KvEngine kv, TargetRepository targets, LeaseStore leases, Identities identities, TimeProvider clock)
{
    public static readonly TimeSpan DefaultUnusedFor = TimeSpan.FromDays(30);
    public static readonly TimeSpan DefaultCheckedOutFor = TimeSpan.FromHours(8);
    public static readonly TimeSpan MinPeriod = TimeSpan.FromMinutes(1);
    public static readonly TimeSpan MaxPeriod = TimeSpan.FromDays(3650);

    /// <exception cref="ValidationException">A period out of range, naming its field.</exception>
    public CredentialReportResult Build(TimeSpan? unusedFor, TimeSpan? checkedOutFor)
    {
        var unused = Check(unusedFor ?? DefaultUnusedFor, "unused_for");
        var checkedOut = Check(checkedOutFor ?? DefaultCheckedOutFor, "checked_out_for");
        var now = clock.GetUtcNow();
        // Before its first pass after an unseal records it, tracking starts now.
        var since = usage.TrackedSince() ?? now;
        var cutoff = now - unused;
        // One scan of the stored last uses, not a lookup per item.
        LastUse lastUse = usage.LastUses();
        var items = new List<ReportItem>();
        items.AddRange(Tokens(lastUse, since, cutoff));
        items.AddRange(SecretIds(lastUse, since, cutoff));
        items.AddRange(Secrets(lastUse, since, cutoff));
        items.AddRange(Targets(now, cutoff));
        items.AddRange(Leases(lastUse, now - checkedOut));
        items.AddRange(People(lastUse, since, cutoff));
        return new CredentialReportResult(now, unused, checkedOut, since, usage.Precision,
            items.OrderBy(i => i.Kind, StringComparer.Ordinal).ThenBy(i => i.Id, StringComparer.Ordinal).ThenBy(i => i.Reason, StringComparer.Ordinal).ToList());
    }

    /// <summary>
    /// Unused when made before the cutoff (or tracked since before it) and not used since:
    /// <c>never_used</c> (or <paramref name="never"/>) / <c>unused</c> (or <paramref name="stale"/>), else null.
    /// </summary>
    private static string? Unused(DateTimeOffset? created, DateTimeOffset? lastUsed, DateTimeOffset since, DateTimeOffset cutoff, string never = "never_used", string stale = "unused")
    {
        var basis = created is { } c && c > since ? c : since;
        if (basis > cutoff)
        {
            return null;
        }
        return lastUsed is null ? never : lastUsed < cutoff ? stale : null;
    }

    private List<ReportItem> Tokens(LastUse lastUse, DateTimeOffset since, DateTimeOffset cutoff)
    {
        var unused = new Dictionary<string, ReportItem>(StringComparer.Ordinal);
        foreach (var token in tokens.ListLive())
        {
            var created = DateTimeOffset.FromUnixTimeMilliseconds(token.CreatedAtUnixMs);
            var lastUsed = lastUse(UsageKind.Token, token.Accessor);
            if (Unused(created, lastUsed, since, cutoff) is { } reason)
            {
                var detail = $"{token.DisplayName}; policies {string.Join(',', token.Policies)}"
                    + (token.Entity.Length > 0 ? $"; for {token.Entity}" : "")
                    + (token.ExpiresAtUnixMs is null ? "; never expires" : "");
                unused[token.Accessor] = new ReportItem("token", token.Accessor, reason, created, lastUsed, detail, Prunable: false);
            }
        }
        // Revoking a token revokes every token it made: prunable only when they are all unused too.
        return unused.Values
            .Select(item => item with { Prunable = AllDescendantsIn(item.Id, unused) })
            .ToList();
    }

    private bool AllDescendantsIn(string accessor, Dictionary<string, ReportItem> unused)
    {
        var pending = new Stack<string>(tokens.ChildrenOf(accessor));
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (pending.Count > 0)
        {
            var child = pending.Pop();
            if (!seen.Add(child))
            {
                continue;
            }
            // A child that expired is gone for every purpose; a live one must be unused too.
            if (!unused.ContainsKey(child) && tokens.IsLive(child))
            {
                return false;
            }
            foreach (var grandchild in tokens.ChildrenOf(child))
            {
                pending.Push(grandchild);
            }
        }
        return true;
    }

    private IEnumerable<ReportItem> SecretIds(LastUse lastUse, DateTimeOffset since, DateTimeOffset cutoff)
    {
        foreach (var secretId in approles.ListSecretIds())
        {
            var id = $"{secretId.RoleName}/{secretId.Accessor}";
            var created = DateTimeOffset.FromUnixTimeMilliseconds(secretId.CreatedAtUnixMs);
            var lastUsed = lastUse(UsageKind.SecretId, id);
            if (Unused(created, lastUsed, since, cutoff) is { } reason)
            {
                var detail = $"role {secretId.RoleName}" + (secretId.UsesLeft is { } uses ? $"; {uses} uses left" : "")
                    + (secretId.ExpiresAtUnixMs is null ? "; never expires" : "");
                yield return new ReportItem("secret_id", id, reason, created, lastUsed, detail, Prunable: true);
            }
        }
    }

    private IEnumerable<ReportItem> Secrets(LastUse lastUse, DateTimeOffset since, DateTimeOffset cutoff)
    {
        foreach (var (path, metadata) in kv.ListReadable())
        {
            // Written within the period is not unused: it counts from its last write.
            var written = DateTimeOffset.FromUnixTimeMilliseconds(Math.Max(metadata.CreatedAtUnixMs, metadata.UpdatedAtUnixMs));
            var lastRead = lastUse(UsageKind.Secret, path);
            if (Unused(written, lastRead, since, cutoff, never: "not_read", stale: "not_read") is { } reason)
            {
                yield return new ReportItem("kv_secret", path, reason, DateTimeOffset.FromUnixTimeMilliseconds(metadata.CreatedAtUnixMs), lastRead,
                    $"version {metadata.CurrentVersion}, written {written:yyyy-MM-dd}", Prunable: false);
            }
        }
    }

    private IEnumerable<ReportItem> Targets(DateTimeOffset now, DateTimeOffset cutoff)
    {
        var overdue = (now - RotationSchedule.OverdueAfter).ToUnixTimeMilliseconds();
        foreach (var (name, target) in targets.List())
        {
            DateTimeOffset? rotated = target.LastRotatedAtUnixMs is { } r ? DateTimeOffset.FromUnixTimeMilliseconds(r) : null;
            ReportItem Item(string reason, string detail) => new("target", name, reason, null, rotated, $"{target.Kind}; {detail}", Prunable: false);
            var scheduled = target.IntervalSeconds is not null || target.Cron is not null;
            if (!target.Paused && target.NextDueAtUnixMs is { } due && due < overdue)
            {
                yield return Item("overdue", $"due {DateTimeOffset.FromUnixTimeMilliseconds(due):yyyy-MM-dd HH:mm} UTC");
            }
            else if (!scheduled && rotated < cutoff)
            {
                // A target never rotated has no age the vault knows: it is not listed for that.
                yield return Item("not_rotated", "no schedule");
            }
            if (target.ConsecutiveFailures > 0)
            {
                yield return Item("failing", $"{target.ConsecutiveFailures} failures: {target.LastError}");
            }
            if (target.NeedsAttention)
            {
                yield return Item("needs_attention", target.LastError ?? "");
            }
            if (target.Drifted)
            {
                yield return Item("drifted", target.DriftedAtUnixMs is { } at ? $"since {DateTimeOffset.FromUnixTimeMilliseconds(at):yyyy-MM-dd HH:mm} UTC" : "");
            }
        }
    }

    private IEnumerable<ReportItem> Leases(LastUse lastUse, DateTimeOffset checkedOutBefore)
    {
        foreach (var (id, lease) in leases.LoadAll(""))
        {
            if (lease.State != LeaseStates.Active || lease.ExpiresAtUnixMs <= clock.GetUtcNow().ToUnixTimeMilliseconds())
            {
                continue;
            }
            var issued = DateTimeOffset.FromUnixTimeMilliseconds(lease.IssuedAtUnixMs);
            if (id.StartsWith(CheckoutSets.Prefix, StringComparison.Ordinal) && issued <= checkedOutBefore)
            {
                yield return new ReportItem("checkout", id, "checked_out_long", issued, lastUse(UsageKind.LeaseRenewal, id),
                    $"{lease.Target}/{lease.Username} held by token {lease.TokenAccessor}", Prunable: false);
            }
            else if (lease.ExpiresAtUnixMs >= lease.MaxExpiresAtUnixMs && lastUse(UsageKind.LeaseRenewal, id) is { } renewed)
            {
                yield return new ReportItem("lease", id, "renewed_to_max", issued, renewed,
                    $"{lease.Role}{(lease.Role.Length > 0 ? " " : "")}on {lease.Target}, ends {DateTimeOffset.FromUnixTimeMilliseconds(lease.MaxExpiresAtUnixMs):yyyy-MM-dd HH:mm} UTC", Prunable: false);
            }
        }
    }

    private IEnumerable<ReportItem> People(LastUse lastUse, DateTimeOffset since, DateTimeOffset cutoff)
    {
        foreach (var name in identities.ListEntities())
        {
            if (identities.TryGetEntity(name) is not { Disabled: false } entity)
            {
                continue;
            }
            var created = DateTimeOffset.FromUnixTimeMilliseconds(entity.CreatedAtUnixMs);
            var lastLogin = lastUse(UsageKind.Person, entity.EntityId);
            if (Unused(created, lastLogin, since, cutoff, never: "never_logged_in", stale: "not_logged_in") is { } reason)
            {
                yield return new ReportItem("person", name, reason, created, lastLogin,
                    entity.Policies.Count > 0 ? $"policies {string.Join(',', entity.Policies)}" : "", Prunable: false);
            }
        }
    }

    private static TimeSpan Check(TimeSpan value, string field) =>
        value < MinPeriod || value > MaxPeriod
            ? throw new ValidationException(field, $"must be between 1 minute and {MaxPeriod.TotalDays:0} days")
            : value;
}
