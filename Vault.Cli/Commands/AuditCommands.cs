using System.CommandLine;
using Grpc.Core;
using Vault.Cli.Input;
using Vault.Cli.Output;
using Vault.Protocol.V1;

namespace Vault.Cli.Commands;

/// <summary><c>vaultctl audit tail|verify|hash|acknowledge-gap|archive</c>: the server's hash-chained audit trail.</summary>
internal static class AuditCommands
{
    /// <summary>The most entries the server returns for one Tail call.</summary>
    private const uint ServerMaxLimit = 10_000;

    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(500);

    public static Command Build()
    {
        var command = new Command("audit", "Read, verify, search and archive the audit trail (needs read on sys/audit)");
        command.Subcommands.Add(Tail());
        command.Subcommands.Add(Verify());
        command.Subcommands.Add(Hash());
        command.Subcommands.Add(AcknowledgeGap());
        command.Subcommands.Add(Archive());
        return command;
    }

    private static Command Tail()
    {
        var limit = new Option<uint>("--limit") { Description = $"Show at most the newest N entries (default 100, at most {ServerMaxLimit})" };
        var pathPrefix = new Option<string>("--path-prefix") { Description = "Only entries whose resource path starts with this, e.g. kv/apps/ or sys/" };
        var accessor = new Option<string>("--accessor") { Description = "Only entries made with this token accessor" };
        var rpc = new Option<string>("--rpc") { Description = "Only entries whose method contains this (case-insensitive), e.g. KvService/Put" };
        var since = new Option<string>("--since") { Description = "Only entries at or after this time: ISO 8601 (UTC unless an offset is given) or a duration ago, e.g. 10m, 2h" };
        var credential = new Option<string>("--credential-hmac") { Description = "Only entries made with the token or secret id whose HMAC 'audit hash' printed" };
        var follow = new Option<bool>("--follow") { Description = "Keep printing new entries as they are written until Ctrl+C (exit 0)" };
        var command = new Command("tail", "Show the newest audit entries, oldest first; with --json one JSON object per line") { limit, pathPrefix, accessor, rpc, since, credential, follow };
        command.SetHandler(async (ctx, ct) =>
        {
            var sinceTime = ctx.Value(since) is { } sinceText ? ArgumentParsers.PointInTime(sinceText, "--since", DateTimeOffset.UtcNow) : (DateTimeOffset?)null;
            Task<IReadOnlyList<AuditEntry>> Fetch(uint max, ulong afterSeq, CancellationToken token) =>
                ctx.Client.TailAuditAsync(max, ctx.Value(pathPrefix), ctx.Value(accessor), ctx.Value(rpc), sinceTime, afterSeq, ctx.Value(credential), token);

            var entries = await Fetch(ctx.Value(limit), 0, ct);
            var widths = PrintEntries(ctx.Out, entries, widths: null);
            if (!ctx.Value(follow))
            {
                return;
            }
            // Ctrl+C is how a follow ends, so it ends as a success: whatever was printed is complete lines.
            try
            {
                await FollowAsync(ctx.Out, ctx.Console.Error, Fetch, entries.Count > 0 ? entries[^1].Seq : 0, widths, ct);
            }
            catch (Exception ex) when (ct.IsCancellationRequested && ex is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
            {
            }
        });
        return command;
    }

    private static async Task FollowAsync(Printer output, TextWriter error, Func<uint, ulong, CancellationToken, Task<IReadOnlyList<AuditEntry>>> fetch, ulong lastSeq, int[]? widths, CancellationToken cancellationToken)
    {
        while (true)
        {
            await Task.Delay(PollInterval, cancellationToken);
            var entries = await fetch(ServerMaxLimit, lastSeq, cancellationToken);
            if (entries.Count == 0)
            {
                continue;
            }
            if (entries.Count == ServerMaxLimit)
            {
                // The server answers with the newest matches, so a burst larger than one answer leaves a gap.
                await error.WriteLineAsync($"vaultctl: {ServerMaxLimit} or more entries arrived between polls; some between seq {lastSeq} and {entries[0].Seq} may not be shown");
            }
            widths = PrintEntries(output, entries, widths);
            lastSeq = entries[^1].Seq;
        }
    }

    /// <summary>Prints entries: JSON lines, or table rows (with the header the first time, when <paramref name="widths"/> is null).</summary>
    /// <returns>The table's column widths; null for JSON.</returns>
    private static int[]? PrintEntries(Printer output, IReadOnlyList<AuditEntry> entries, int[]? widths)
    {
        if (output.IsJson)
        {
            foreach (var e in entries)
            {
                output.JsonLine(new
                {
                    e.Seq,
                    Time = Printer.Time(e.Time),
                    e.RequestId,
                    Accessor = NullIfEmpty(e.Accessor),
                    Entity = NullIfEmpty(e.Entity),
                    EntityId = NullIfEmpty(e.EntityId),
                    e.Rpc,
                    Path = NullIfEmpty(e.Path),
                    e.Outcome,
                    ErrorCode = NullIfEmpty(e.ErrorCode),
                    CredentialHmac = NullIfEmpty(e.CredentialHmac),
                    Event = NullIfEmpty(e.Event),
                    PrevHash = NullIfEmpty(e.PrevHash),
                    e.Hash,
                });
            }
            return null;
        }
        var rows = entries.Select(e => new[]
        {
            e.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture),
            Printer.Human(e.Time),
            DashIfEmpty(e.Accessor),
            DashIfEmpty(e.Entity),
            // The package prefix is the same on every line; people read the service and method.
            e.Rpc.StartsWith("vault.v1.", StringComparison.Ordinal) ? e.Rpc["vault.v1.".Length..] : e.Rpc,
            DashIfEmpty(e.Path),
            e.Outcome,
            e.Event.Length > 0 ? $"{DashIfEmpty(e.ErrorCode)} ({e.Event})" : DashIfEmpty(e.ErrorCode),
        }).ToList();
        if (widths is null)
        {
            return output.Table(["SEQ", "TIME", "ACCESSOR", "ENTITY", "RPC", "PATH", "OUTCOME", "ERROR"], rows);
        }
        output.MoreRows(rows, widths);
        return widths;
    }

    private static Command Verify()
    {
        var command = new Command("verify", "Check the whole audit chain; exits 4 and names the first bad entry (file, line, reason) if it is broken. "
            + "Given several addresses (nodes of one vault, each with its own audit log), checks every node's chain");
        command.SetHandler(async (ctx, ct) =>
        {
            if (ctx.Client.Addresses.Count > 1)
            {
                await VerifyEveryNodeAsync(ctx, ct);
                return;
            }
            var result = await ctx.Client.VerifyAuditAsync(ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new
                {
                    result.Ok,
                    result.EntriesChecked,
                    File = result.Ok ? null : NullIfEmpty(result.File),
                    Line = result.Ok ? (ulong?)null : result.Line,
                    Reason = result.Ok ? null : result.Reason,
                });
            }
            else if (result.Ok)
            {
                ctx.Out.Line($"audit log intact: {result.EntriesChecked} entries");
            }
            if (!result.Ok)
            {
                // A truncated log has no file to point at: the entries after the last one are gone.
                var where = result.File.Length > 0 ? $"{result.File} line {result.Line}" : $"entry {result.Line}";
                throw new VerificationFailedException($"audit log broken at {where}: {result.Reason} ({result.EntriesChecked} entries before it intact)");
            }
        });
        return command;
    }

    /// <summary>Each node's own chain, one line (or JSON object) per node; exits 4 if any is broken.</summary>
    private static async Task VerifyEveryNodeAsync(CommandContext ctx, CancellationToken ct)
    {
        var nodes = ctx.ClientPerNode();
        try
        {
            var broken = new List<string>();
            var results = new List<object>();
            foreach (var (address, client) in nodes)
            {
                var node = address.ToString().TrimEnd('/');
                Vault.Protocol.V1.VerifyAuditResponse result;
                try
                {
                    result = await client.VerifyAuditAsync(ct);
                }
                catch (Grpc.Core.RpcException ex) when (!ct.IsCancellationRequested)
                {
                    // One node not answering must not leave the others unchecked.
                    results.Add(new { Node = node, Ok = false, Error = $"{ex.StatusCode}: {ex.Status.Detail}" });
                    broken.Add($"{node}: not checked ({ex.StatusCode}: {ex.Status.Detail})");
                    continue;
                }
                var where = result.File.Length > 0 ? $"{result.File} line {result.Line}" : $"entry {result.Line}";
                results.Add(new { Node = node, result.Ok, result.EntriesChecked, File = result.Ok ? null : NullIfEmpty(result.File), Line = result.Ok ? (ulong?)null : result.Line, Reason = result.Ok ? null : result.Reason });
                if (result.Ok)
                {
                    if (!ctx.Out.IsJson)
                    {
                        ctx.Out.Line($"{node}: audit log intact: {result.EntriesChecked} entries");
                    }
                }
                else
                {
                    broken.Add($"{node}: audit log broken at {where}: {result.Reason} ({result.EntriesChecked} entries before it intact)");
                }
            }
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(results);
            }
            if (broken.Count > 0)
            {
                throw new VerificationFailedException(string.Join("; ", broken));
            }
        }
        finally
        {
            foreach (var (_, client) in nodes)
            {
                client.Dispose();
            }
        }
    }

    private static Command AcknowledgeGap()
    {
        var lastMissing = new Option<ulong>("--last-missing") { Description = "The last missing entry, as the server's refusal named it", Required = true };
        var command = new Command("acknowledge-gap",
            "After the server found entries missing from its audit log (cut or deleted) and refuses requests, acknowledge the gap once you know why: "
            + "it is recorded (verify reports it) and the server serves again (needs update on sys/audit/acknowledge)")
        { lastMissing };
        command.SetHandler(async (ctx, ct) =>
        {
            var gap = await ctx.Client.AcknowledgeAuditGapAsync(ctx.Value(lastMissing), ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { gap.FirstMissing, gap.LastMissing });
                return;
            }
            ctx.Out.Line($"acknowledged missing audit entries {gap.FirstMissing}–{gap.LastMissing}; the chain goes on");
        });
        return command;
    }

    private static Command Archive()
    {
        var keepFiles = new Option<uint?>("--keep-files") { Description = "Keep the newest N audit files (the current one counts) and archive the rest" };
        var beforeFile = new Option<string>("--before-file") { Description = "Or: archive every audit file named before this one, e.g. audit-000004.jsonl" };
        var command = new Command("archive",
            "Move the older, closed audit files into DATA_DIR/audit/archive/ on the server, recording where the kept chain now begins; "
            + "verify then starts there (needs update on sys/audit/archive)")
        { keepFiles, beforeFile };
        command.SetHandler(async (ctx, ct) =>
        {
            var keep = ctx.Value(keepFiles);
            var before = ctx.Value(beforeFile);
            if (keep is null == before is null)
            {
                throw new UsageException("give --keep-files N or --before-file FILE (one of them)");
            }
            if (keep == 0)
            {
                throw new UsageException("--keep-files: must be at least 1 (the current file is never archived)");
            }
            var result = await ctx.Client.ArchiveAuditAsync(keep ?? 0, before, ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { result.ArchivedFiles, result.StartFile, result.StartSeq });
                return;
            }
            var start = $"the kept chain begins at entry {result.StartSeq} in {result.StartFile}";
            ctx.Out.Line(result.ArchivedFiles.Count == 0
                ? $"nothing to archive; {start}"
                : $"archived {result.ArchivedFiles.Count} files to audit/archive/ ({string.Join(", ", result.ArchivedFiles)}); {start}");
        });
        return command;
    }

    private static Command Hash()
    {
        var file = new Option<string>("--value-file") { Description = "Read the value from this file (one trailing newline is ignored)" };
        var command = new Command("hash",
            "Print the HMAC the audit log would hold for a value, to search the log without revealing it. "
            + "The value is read from --value-file, from standard input when it is redirected, or from a prompt without echo; never from an argument.")
        { file };
        command.SetHandler(async (ctx, ct) =>
        {
            var client = ctx.Client;
            var value = await SecretValueReader.ReadAsync(ctx.Console, ctx.Value(file), "--value-file", ct);
            var hash = await client.HashAuditValueAsync(value, ct);
            if (ctx.Out.IsJson)
            {
                ctx.Out.Json(new { Hash = hash });
                return;
            }
            ctx.Out.Line(hash);
        });
        return command;
    }

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;

    private static string DashIfEmpty(string value) => value.Length == 0 ? "-" : value;
}
