using System.CommandLine;
using Google.Protobuf.WellKnownTypes;
using Vault.Cli.Input;
using Vault.Cli.Output;
using Vault.Protocol.V1;

namespace Vault.Cli.Commands;

/// <summary>
/// Just-in-time access: <c>vaultctl grant write|list|show|delete</c> for admins and
/// <c>vaultctl request create|list|show|approve|deny|revoke</c> for people and their approvers.
/// </summary>
internal static class AccessCommands
{
    public static Command Grants()
    {
        var command = new Command("grant", "Grants: policies a person may request for a while, approved by N of a group (or break-glass)");
        var name = new Argument<string>("name") { Description = "Grant name" };
        var policies = new Option<string[]>("--policy") { Description = "Policy the grant confers (repeatable, at least one)", Required = true };
        var maxDuration = new Option<string>("--max-duration") { Description = "Longest a request may ask for (default 30d; an emergency grant's at most 1h)" };
        var approvers = new Option<string>("--approvers") { Description = "Group whose members approve" };
        var approvals = new Option<uint>("--approvals") { Description = "Distinct approvals needed (default 1; 0 for --emergency)" };
        var mfaToRequest = new Option<bool>("--mfa-to-request") { Description = "Requesting needs an MFA code validated within 5 minutes" };
        var mfaToApprove = new Option<bool>("--mfa-to-approve") { Description = "Approving needs an MFA code validated within 5 minutes" };
        var requestTtl = new Option<string>("--request-ttl") { Description = "How long a request waits for its approvals (default 24h)" };
        var emergency = new Option<bool>("--emergency") { Description = "Break-glass: no approval; MFA and a reason required; audited as break-glass" };
        var write = new Command("write", "Create or replace a grant") { name, policies, maxDuration, approvers, approvals, mfaToRequest, mfaToApprove, requestTtl, emergency };
        write.SetHandler(async (ctx, ct) =>
        {
            var grant = new Grant
            {
                Name = ctx.Value(name),
                ApproverGroup = ctx.Value(approvers) ?? "",
                ApprovalsRequired = ctx.Parse.GetResult(approvals) is null ? (ctx.Value(emergency) ? 0u : 1u) : ctx.Value(approvals),
                MfaToRequest = ctx.Value(mfaToRequest),
                MfaToApprove = ctx.Value(mfaToApprove),
                Emergency = ctx.Value(emergency),
            };
            grant.Policies.AddRange(ctx.Value(policies) ?? []);
            if (ctx.Value(maxDuration) is { } max)
            {
                grant.MaxDuration = Duration.FromTimeSpan(DurationParser.Parse(max, "--max-duration"));
            }
            if (ctx.Value(requestTtl) is { } ttl)
            {
                grant.RequestTtl = Duration.FromTimeSpan(DurationParser.Parse(ttl, "--request-ttl"));
            }
            PrintGrant(ctx.Out, await ctx.Client.PutGrantAsync(grant, ct));
        });
        command.Subcommands.Add(write);
        var listCommand = new Command("list", "List grants");
        listCommand.SetHandler(async (ctx, ct) => ctx.Out.Names("names", await ctx.Client.ListGrantsAsync(ct)));
        command.Subcommands.Add(listCommand);
        var showName = new Argument<string>("name") { Description = "Grant name" };
        var show = new Command("show", "Show a grant") { showName };
        show.SetHandler(async (ctx, ct) => PrintGrant(ctx.Out, await ctx.Client.GetGrantAsync(ctx.Value(showName), ct)));
        command.Subcommands.Add(show);
        var deleteName = new Argument<string>("name") { Description = "Grant name" };
        var delete = new Command("delete", "Delete a grant (requests already made keep their course)") { deleteName };
        delete.SetHandler(async (ctx, ct) =>
        {
            await ctx.Client.DeleteGrantAsync(ctx.Value(deleteName), ct);
            ctx.Out.Deleted("Grant", ctx.Value(deleteName));
        });
        command.Subcommands.Add(delete);
        return command;
    }

    public static Command Requests()
    {
        var command = new Command("request", "Access requests: ask for a grant, answer as an approver, end one early");
        var grant = new Argument<string>("grant") { Description = "The grant to ask for" };
        var reason = new Option<string>("--reason") { Description = "Why (shown to the approvers)", Required = true };
        var duration = new Option<string>("--duration") { Description = "How long, e.g. 1h (default: the grant's maximum)" };
        var create = new Command("create", "Ask for a grant; prints the request (its id is what approvers approve)") { grant, reason, duration };
        create.SetHandler(async (ctx, ct) =>
        {
            TimeSpan? length = ctx.Value(duration) is { } d ? DurationParser.Parse(d, "--duration") : null;
            PrintRequest(ctx.Out, await ctx.Client.CreateAccessRequestAsync(ctx.Value(grant), ctx.Value(reason), length, ct));
        });
        command.Subcommands.Add(create);
        var state = new Option<string>("--state") { Description = "Only requests in this state: pending, active, denied, expired, ended, revoked" };
        var list = new Command("list", "List requests (approvers: --state pending)") { state };
        list.SetHandler(async (ctx, ct) =>
        {
            var requests = await ctx.Client.ListAccessRequestsAsync(ctx.Value(state), ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { Requests = requests.Select(Document).ToList() });
                return;
            }
            ctx.Out.Table(["ID", "GRANT", "REQUESTER", "STATE", "APPROVALS", "ENDS", "REASON"], requests.Select(r => new[]
            {
                r.Id, r.Grant, r.Requester, r.State, $"{r.Approvals.Count}/{r.ApprovalsRequired}",
                r.EndsAt is null ? "-" : Printer.Human(r.EndsAt), r.Reason,
            }).ToList());
        });
        command.Subcommands.Add(list);
        command.Subcommands.Add(OnRequest("show", "Show a request and its approvals", (ctx, id, _, ct) => ctx.Client.GetAccessRequestAsync(id, ct), withComment: false));
        command.Subcommands.Add(OnRequest("approve", "Approve a request (a member of the grant's approver group; not your own)", (ctx, id, comment, ct) => ctx.Client.ApproveAccessRequestAsync(id, comment, ct)));
        command.Subcommands.Add(OnRequest("deny", "Deny a request", (ctx, id, comment, ct) => ctx.Client.DenyAccessRequestAsync(id, comment, ct)));
        command.Subcommands.Add(OnRequest("revoke", "End an active grant now, or withdraw a pending request", (ctx, id, comment, ct) => ctx.Client.RevokeAccessRequestAsync(id, comment, ct)));
        return command;
    }

    private static Command OnRequest(string verb, string description, Func<CommandContext, string, string?, CancellationToken, Task<AccessRequest>> call, bool withComment = true)
    {
        var id = new Argument<string>("id") { Description = "The request's id (ar_…)" };
        var comment = new Option<string>("--comment") { Description = "Why (kept with the request)" };
        var command = new Command(verb, description) { id };
        if (withComment)
        {
            command.Options.Add(comment);
        }
        command.SetHandler(async (ctx, ct) => PrintRequest(ctx.Out, await call(ctx, ctx.Value(id), withComment ? ctx.Value(comment) : null, ct)));
        return command;
    }

    private static object Document(AccessRequest r) => new
    {
        r.Id,
        r.Grant,
        r.Requester,
        r.Reason,
        DurationSeconds = (long?)r.Duration?.ToTimeSpan().TotalSeconds,
        r.State,
        CreatedAt = Printer.Time(r.CreatedAt),
        ExpiresAt = Printer.Time(r.ExpiresAt),
        Approvals = r.Approvals.Select(a => new { a.Entity, At = Printer.Time(a.At), a.Comment }).ToList(),
        r.ApprovalsRequired,
        ActiveFrom = Printer.Time(r.ActiveFrom),
        EndsAt = Printer.Time(r.EndsAt),
        ClosedBy = r.ClosedBy.Length == 0 ? null : r.ClosedBy,
        Comment = r.Comment.Length == 0 ? null : r.Comment,
        Policies = r.Policies.ToList(),
        r.Emergency,
    };

    private static void PrintRequest(Printer output, AccessRequest r)
    {
        if (output.IsJson)
        {
            output.Json(Document(r));
            return;
        }
        output.Fields(
            ("ID", r.Id),
            ("Grant", r.Emergency ? $"{r.Grant} (break-glass)" : r.Grant),
            ("Requester", r.Requester),
            ("Reason", r.Reason),
            ("Duration", r.Duration is null ? "-" : DurationParser.Format(r.Duration.ToTimeSpan())),
            ("State", r.State),
            ("Approvals", $"{r.Approvals.Count} of {r.ApprovalsRequired}" + (r.Approvals.Count == 0 ? "" : ": " + string.Join(", ", r.Approvals.Select(a => a.Entity)))),
            ("Policies", string.Join(", ", r.Policies)),
            ("Active From", r.ActiveFrom is null ? "-" : Printer.Human(r.ActiveFrom)),
            ("Ends", r.EndsAt is null ? "-" : Printer.Human(r.EndsAt)),
            ("Expires If Unanswered", r.State == "pending" ? Printer.Human(r.ExpiresAt) : "-"),
            ("Closed By", r.ClosedBy.Length == 0 ? "-" : r.Comment.Length == 0 ? r.ClosedBy : $"{r.ClosedBy}: {r.Comment}"));
    }

    private static void PrintGrant(Printer output, Grant g)
    {
        if (output.IsJson)
        {
            output.Json(new
            {
                g.Name,
                Policies = g.Policies.ToList(),
                MaxDurationSeconds = (long?)g.MaxDuration?.ToTimeSpan().TotalSeconds,
                ApproverGroup = g.ApproverGroup.Length == 0 ? null : g.ApproverGroup,
                g.ApprovalsRequired,
                g.MfaToRequest,
                g.MfaToApprove,
                RequestTtlSeconds = (long?)g.RequestTtl?.ToTimeSpan().TotalSeconds,
                g.Emergency,
            });
            return;
        }
        output.Fields(
            ("Name", g.Name),
            ("Policies", string.Join(", ", g.Policies)),
            ("Max Duration", g.MaxDuration is null ? "-" : DurationParser.Format(g.MaxDuration.ToTimeSpan())),
            ("Approvers", g.Emergency ? "none (break-glass)" : $"{g.ApprovalsRequired} of group {g.ApproverGroup}"),
            ("MFA", (g.MfaToRequest, g.MfaToApprove) switch { (true, true) => "to request and to approve", (true, false) => "to request", (false, true) => "to approve", _ => "-" }),
            ("Request TTL", g.RequestTtl is null ? "-" : DurationParser.Format(g.RequestTtl.ToTimeSpan())));
    }
}
