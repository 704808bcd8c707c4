using System.Diagnostics.Metrics;
using Grpc.Core;
using Vault.Server.Crypto;
using Vault.Server.Rotation;

namespace Vault.Server.Telemetry;

/// <summary>
/// The vault's instruments (meter <see cref="MeterName"/>), named after OpenTelemetry's semantic
/// conventions where one exists (<c>rpc.server.call.duration</c>). No tag carries a secret, a token
/// or an unbounded value: RPCs by service and method, targets by their (admin-chosen) name and kind.
/// </summary>
public sealed class VaultMetrics
{
    /// <summary>The meter every vault instrument belongs to.</summary>
    public const string MeterName = "Vault.Server";

    private readonly Histogram<double> _rpcDuration;
    private readonly Counter<long> _rotations;
    private readonly Histogram<double> _rotationDuration;
    private long _breakGlass;

    public VaultMetrics(IMeterFactory meters, SecurityBarrier barrier, TargetRepository targets, TargetTrust trust, Leases.LeaseStore leases, Audit.AuditLog audit, Storage.IVaultStore store, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(meters);
        var meter = meters.Create(MeterName);
        _rpcDuration = meter.CreateHistogram<double>("rpc.server.call.duration", unit: "s",
            description: "How long the server took to answer each RPC, by service, method and gRPC status code.");
        _rotationDuration = meter.CreateHistogram<double>("vault.rotation.duration", unit: "s",
            description: "How long each finished rotation took (waiting for its locks included), by target kind and outcome.");
        _rotations = meter.CreateCounter<long>("vault.rotation.outcomes", unit: "{rotation}",
            description: "Rotations finished, by target, its kind and the outcome (succeeded, failed, recovered, discarded, needs-attention).");
        // Observed, not added to: the series exists from the start (0), so an alert on its increase
        // has something to compare with. Which grant and who are in the audit trail.
        meter.CreateObservableCounter("vault.access.break_glass", () => Volatile.Read(ref _breakGlass), unit: "{use}",
            description: "Break-glass (emergency) grants taken since the server started.");
        meter.CreateObservableGauge("vault.audit.failing", () => audit.Failure is null ? 0 : 1, unit: "{state}",
            description: "1 while the audit log cannot be written (every request is refused), else 0.");
        meter.CreateObservableGauge("vault.audit.queue", () => audit.QueueDepth, unit: "{entry}",
            description: "Audit entries waiting to be written (their requests wait with them).");
        meter.CreateObservableGauge("vault.store.failing", () => store.Failure is null ? 0 : 1, unit: "{state}",
            description: "1 while the store refuses writes (e.g. the disk is full), else 0.");
        meter.CreateObservableGauge("vault.tokens.active", () => ActiveTokens(barrier, store, clock), unit: "{token}",
            description: "Tokens that have not expired (root tokens never do).");
        meter.CreateObservableGauge("vault.store.pending", () => store.PendingBytes, unit: "By",
            description: "Bytes of acknowledged changes the store holds in memory, not yet in its data file (the apply lag).");
        meter.CreateObservableGauge("vault.serving", () => barrier.IsSealed || audit.Failure is not null || store.Failure is not null ? 0 : 1, unit: "{state}",
            description: "1 while the vault serves requests (unsealed, the audit log writing, the store taking writes), as the overall gRPC health status says; else 0.");
        meter.CreateObservableGauge("vault.seal.sealed", () => barrier.IsSealed ? 1 : 0, unit: "{state}",
            description: "1 while the vault is sealed, else 0.");
        meter.CreateObservableGauge("vault.leases", () => Leases(barrier, leases, clock, expiringWithinHour: false), unit: "{lease}",
            description: "Leases by kind (dynamic, static, checkout), role or check-out set, and state (creating, active, revoking, irrevocable).");
        meter.CreateObservableGauge("vault.leases.expiring", () => Leases(barrier, leases, clock, expiringWithinHour: true), unit: "{lease}",
            description: "Active leases whose current term ends within the hour, by kind and role or set.");
        meter.CreateObservableGauge("vault.rotation.targets", () => TargetStates(barrier, targets, trust, clock), unit: "{target}",
            description: "Rotation targets by state: all, failing (the last rotation failed and is being retried), needs_attention, drifted, paused, overdue (due over 15 minutes ago, not paused), unverified_tls (reached over plaintext or TLS whose certificate or host name is not checked, as target show warns).");
        meter.CreateObservableGauge("vault.rotation.next_due", () => NextDue(barrier, targets, clock), unit: "s",
            description: "Seconds until each scheduled target's next rotation is due; negative when overdue.");
    }

    /// <summary>Records an answered RPC; <paramref name="method"/> is the gRPC method path, <c>/package.Service/Method</c>.</summary>
    public void RpcAnswered(string method, StatusCode status, TimeSpan elapsed)
    {
        ArgumentNullException.ThrowIfNull(method);
        var slash = method.LastIndexOf('/');
        var service = slash > 0 ? method[1..slash] : method;
        var name = slash > 0 ? method[(slash + 1)..] : method;
        _rpcDuration.Record(elapsed.TotalSeconds,
            new KeyValuePair<string, object?>("rpc.system", "grpc"),
            new KeyValuePair<string, object?>("rpc.service", service),
            new KeyValuePair<string, object?>("rpc.method", name),
            new KeyValuePair<string, object?>("rpc.grpc.status_code", (int)status));
    }

    /// <summary>Records a break-glass grant taken.</summary>
    public void BreakGlassUsed() => Interlocked.Increment(ref _breakGlass);

    /// <summary>Records a finished rotation of <paramref name="target"/>.</summary>
    public void RotationFinished(string target, string kind, string outcome, TimeSpan took)
    {
        _rotations.Add(1,
            new KeyValuePair<string, object?>("vault.target.name", target),
            new KeyValuePair<string, object?>("vault.target.kind", kind),
            new KeyValuePair<string, object?>("vault.rotation.outcome", outcome));
        // By kind, not target: a histogram per target would multiply its buckets by every target.
        _rotationDuration.Record(took.TotalSeconds,
            new KeyValuePair<string, object?>("vault.target.kind", kind),
            new KeyValuePair<string, object?>("vault.rotation.outcome", outcome));
    }

    /// <summary>A count for a gauge, not a decision: records are read without checking their seals (every use checks them).</summary>
    private static int ActiveTokens(SecurityBarrier barrier, Storage.IVaultStore store, TimeProvider clock)
    {
        if (barrier.IsSealed)
        {
            return 0;
        }
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        return store.List<Auth.TokenRecord>(Storage.Collections.Tokens, "").Count(t => t.Value.ExpiresAtUnixMs is not { } expires || expires > now);
    }


    private static IReadOnlyList<(string Name, TargetRecord Record)>? Targets(SecurityBarrier barrier, TargetRepository targets)
    {
        if (barrier.IsSealed)
        {
            return null;
        }
        try
        {
            return targets.List();
        }
        catch (VaultException)
        {
            // Sealed meanwhile, or a record that fails its seal: the scrape goes on without these.
            return null;
        }
    }

    private static IEnumerable<Measurement<double>> NextDue(SecurityBarrier barrier, TargetRepository targets, TimeProvider clock)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        return Targets(barrier, targets)?
            .Where(t => t.Record.NextDueAtUnixMs is not null && !t.Record.Paused)
            .Select(t => new Measurement<double>((t.Record.NextDueAtUnixMs!.Value - now) / 1000.0, new KeyValuePair<string, object?>("vault.target.name", t.Name)))
            .ToList() ?? [];
    }

    private static IEnumerable<Measurement<int>> TargetStates(SecurityBarrier barrier, TargetRepository targets, TargetTrust trust, TimeProvider clock)
    {
        if (Targets(barrier, targets) is not { } all)
        {
            return [];
        }
        var overdue = (clock.GetUtcNow() - RotationSchedule.OverdueAfter).ToUnixTimeMilliseconds();
        return
        [
            State("all", all.Count),
            State("failing", all.Count(t => t.Record.ConsecutiveFailures > 0)),
            State("needs_attention", all.Count(t => t.Record.NeedsAttention)),
            State("drifted", all.Count(t => t.Record.Drifted)),
            State("paused", all.Count(t => t.Record.Paused)),
            State("overdue", all.Count(t => !t.Record.Paused && t.Record.NextDueAtUnixMs is { } due && due < overdue)),
            State("unverified_tls", all.Count(t => trust.Transport(t.Record) is { Verified: false })),
        ];
    }

    private static IEnumerable<Measurement<int>> Leases(SecurityBarrier barrier, Leases.LeaseStore leases, TimeProvider clock, bool expiringWithinHour)
    {
        if (barrier.IsSealed)
        {
            return [];
        }
        IReadOnlyList<(string Id, Leases.LeaseRecord Lease)> all;
        try
        {
            all = leases.LoadAll("");
        }
        catch (VaultException)
        {
            return [];
        }
        var horizon = clock.GetUtcNow().AddHours(1).ToUnixTimeMilliseconds();
        // Grouped by what the id says (kind/owner/…): the role or set, never a user or token.
        return all
            .Where(l => l.Lease.State != Vault.Server.Leases.LeaseStates.Revoked)
            .Where(l => !expiringWithinHour || (l.Lease.State == Vault.Server.Leases.LeaseStates.Active && l.Lease.ExpiresAtUnixMs <= horizon))
            .GroupBy(l => (Kind: KindOf(l.Id), Owner: OwnerOf(l.Id), State: expiringWithinHour ? "" : l.Lease.State))
            .Select(g => expiringWithinHour
                ? new Measurement<int>(g.Count(), new KeyValuePair<string, object?>("vault.lease.kind", g.Key.Kind), new KeyValuePair<string, object?>("vault.lease.owner", g.Key.Owner))
                : new Measurement<int>(g.Count(), new KeyValuePair<string, object?>("vault.lease.kind", g.Key.Kind), new KeyValuePair<string, object?>("vault.lease.owner", g.Key.Owner), new KeyValuePair<string, object?>("vault.lease.state", g.Key.State)))
            .ToList();
    }

    /// <summary><c>dynamic</c>, <c>static</c> or <c>checkout</c>: the first segment of a lease id.</summary>
    private static string KindOf(string leaseId) => leaseId.Split('/')[0];

    /// <summary>The role, target or check-out set a lease belongs to: the second segment of its id.</summary>
    private static string OwnerOf(string leaseId) => leaseId.Split('/') is { Length: > 2 } parts ? parts[1] : "";

    private static Measurement<int> State(string state, int count) => new(count, new KeyValuePair<string, object?>("state", state));
}
