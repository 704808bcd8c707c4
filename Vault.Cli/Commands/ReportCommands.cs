using System.CommandLine;
using Grpc.Core;
using Vault.Cli.Input;
using Vault.Cli.Output;
using Vault.Protocol.V1;

namespace Vault.Cli.Commands;

/// <summary><c>vaultctl report credentials [--unused-for 30d] [--checked-out-for 8h] [--prune [--yes]]</c>.</summary>
internal static class ReportCommands
{
    public static Command Build()
    {
        var command = new Command("report", "Reports over the whole vault");
        command.Subcommands.Add(Credentials());
        return command;
    }

    private static Command Credentials()
    {
        var unusedFor = new Option<string>("--unused-for") { Description = "How long without use counts as unused, e.g. 30d, 12h (default 30d)" };
        var checkedOutFor = new Option<string>("--checked-out-for") { Description = "List check-outs held longer than this, e.g. 8h (default 8h)" };
        var prune = new Option<bool>("--prune") { Description = "Revoke the unused tokens and destroy the unused secret ids the report lists (a dry run unless --yes)" };
        var yes = new Option<bool>("--yes") { Description = "With --prune: revoke for real" };
        var command = new Command("credentials",
            "Zombie credentials: unused tokens, secret ids, unread secrets, targets overdue/failing/drifted, long check-outs, leases renewed to their maximum, people who have not logged in")
        {
            unusedFor, checkedOutFor, prune, yes,
        };
        command.SetHandler(async (ctx, ct) =>
        {
            if (ctx.Value(yes) && !ctx.Value(prune))
            {
                throw new UsageException("--yes: only means something with --prune");
            }
            TimeSpan? unused = ctx.Value(unusedFor) is { } u ? DurationParser.Parse(u, "--unused-for") : null;
            TimeSpan? held = ctx.Value(checkedOutFor) is { } h ? DurationParser.Parse(h, "--checked-out-for") : null;
            var report = await ctx.Client.GetCredentialReportAsync(unused, held, ct);
            if (!ctx.Value(prune))
            {
                Print(ctx.Out, report);
                return;
            }
            await PruneAsync(ctx, report, dryRun: !ctx.Value(yes), ct);
        });
        return command;
    }

    private static void Print(Printer output, CredentialReport report)
    {
        if (output.IsJson)
        {
            output.Json(new
            {
                GeneratedAt = Printer.Time(report.GeneratedAt),
                UnusedFor = DurationParser.Format(report.UnusedFor.ToTimeSpan()),
                CheckedOutFor = DurationParser.Format(report.CheckedOutFor.ToTimeSpan()),
                TrackedSince = Printer.Time(report.TrackedSince),
                Precision = DurationParser.Format(report.Precision.ToTimeSpan()),
                Items = report.Items.Select(Json).ToList(),
            });
            return;
        }
        output.Line($"unused for {DurationParser.Format(report.UnusedFor.ToTimeSpan())}; check-outs over {DurationParser.Format(report.CheckedOutFor.ToTimeSpan())}; "
            + $"uses tracked since {Printer.Human(report.TrackedSince)}, known to within {DurationParser.Format(report.Precision.ToTimeSpan())}");
        if (report.Items.Count == 0)
        {
            output.Line("nothing to report");
            return;
        }
        output.Table(["KIND", "ID", "REASON", "LAST USED", "PRUNE", "DETAIL"],
            report.Items.Select(i => new[] { i.Kind, i.Id, i.Reason, Printer.Human(i.LastUsedAt), i.Prunable ? "yes" : "-", i.Detail }).ToList());
    }

    private static object Json(ReportItem item) => new
    {
        item.Kind,
        item.Id,
        item.Reason,
        CreatedAt = Printer.Time(item.CreatedAt),
        LastUsedAt = Printer.Time(item.LastUsedAt),
        item.Prunable,
        item.Detail,
    };

    /// <summary>
    /// Revokes each prunable item with its own RPC, so each revocation is its own audit entry and
    /// needs its own permission. An item already gone (revoked with a parent listed before it) is
    /// not a failure; any other refusal is reported and the rest go on.
    /// </summary>
    private static async Task PruneAsync(CommandContext ctx, CredentialReport report, bool dryRun, CancellationToken ct)
    {
        var results = new List<(ReportItem Item, string Outcome)>();
        var failures = 0;
        foreach (var item in report.Items.Where(i => i.Prunable))
        {
            if (dryRun)
            {
                results.Add((item, "would revoke"));
                continue;
            }
            try
            {
                if (item.Kind == "token")
                {
                    var revoked = await ctx.Client.RevokeTokenAsync(item.Id, ct);
                    results.Add((item, revoked > 1 ? $"revoked ({revoked} tokens with its children)" : "revoked"));
                }
                else
                {
                    var slash = item.Id.LastIndexOf('/');
                    await ctx.Client.DestroySecretIdAsync(item.Id[..slash], item.Id[(slash + 1)..], ct);
                    results.Add((item, "revoked"));
                }
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
            {
                results.Add((item, "already gone"));
            }
            catch (RpcException ex) when (ex.Status.DebugException is null && ex.StatusCode != StatusCode.Cancelled)
            {
                failures++;
                results.Add((item, $"failed: {ex.StatusCode}: {ex.Status.Detail}"));
            }
        }
        if (ctx.Out.IsJson)
        {
            ctx.Out.Json(new { DryRun = dryRun, Items = results.Select(r => new { r.Item.Kind, r.Item.Id, r.Item.Reason, r.Outcome }).ToList() });
        }
        else if (results.Count == 0)
        {
            ctx.Out.Line("nothing to prune");
        }
        else
        {
            ctx.Out.Table(["KIND", "ID", "REASON", "OUTCOME"], results.Select(r => new[] { r.Item.Kind, r.Item.Id, r.Item.Reason, r.Outcome }).ToList());
            if (dryRun)
            {
                ctx.Out.Line($"dry run: nothing revoked; run again with --yes to revoke these {results.Count}");
            }
        }
        if (failures > 0)
        {
            throw new PruneIncompleteException($"{failures} of {results.Count} could not be revoked (listed above)");
        }
    }
}
