using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Vault.Protocol.V1;
using Vault.Server.Auth;
using Vault.Server.Rotation;
using Vault.Server.Secrets;
using DomainPolicy = Vault.Rotators.Passwords.PasswordPolicy;

namespace Vault.Server.Grpc;

/// <summary>
/// Rotation targets over gRPC: maps messages to <see cref="TargetManager"/> and <see cref="RotationEngine"/>;
/// a watch listens to <see cref="TargetRepository.CredentialChanged"/>.
/// </summary>
public sealed class TargetGrpcService(TargetManager targets, TargetRepository records, RotationEngine engine, Leases.TargetLeaseRules targetRules, IHostApplicationLifetime lifetime) : TargetService.TargetServiceBase
{
    private const int DefaultHistory = 50;
    private const int MaxHistoryPage = 1000;

    public override async Task<Target> PutTarget(PutTargetRequest request, ServerCallContext context)
    {
        var target = request.Target ?? throw new ValidationException("target", "is required");
        var spec = ToSpec(target);
        TargetRecord? record = null;
        // Under the target's rotation lock: a rotation must not set a password on one host and
        // store it for another.
        await engine.ExclusiveAsync(target.Name, async () =>
        {
            var existing = targets.TryGet(target.Name);
            var moves = existing is not null && TargetManager.Moves(existing, spec);
            if (moves && !AuthorisedToMove(target.Name, existing!, context))
            {
                throw new VersionConflictException($"target '{target.Name}' changed while the request was checked (it would now move it); retry");
            }
            targetRules.CheckPut(target.Name, spec, request.RotateNow, moves);
            record = await targets.PutAsync(spec, request.RotateNow, Empty(request.CurrentPassword), Empty(request.SecondCurrentPassword), verify: !request.SkipVerification, context.CancellationToken);
        }, context.CancellationToken);
        return ToProto(target.Name, record!);
    }

    /// <summary>Whether the request was checked for moving <paramref name="existing"/> as it is now (see <see cref="AccessRules"/>).</summary>
    private static bool AuthorisedToMove(string name, TargetRecord existing, ServerCallContext context)
    {
        var authorised = VaultInterceptor.Authorised(context);
        return authorised.Contains(new RequiredAccess(ResourcePaths.TargetCredential(name), Capability.Read))
            && (existing.AdminSecret.Length == 0 || authorised.Contains(new RequiredAccess(ResourcePaths.Kv(existing.AdminSecret), Capability.Read)));
    }

    /// <summary>The domain's specification of a target, from its message (the access table reads it too).</summary>
    internal static TargetSpec ToSpec(Target target)
    {
        // A port is checked in one place, the rotator's (TargetSpecValidator maps its field): one too
        // large for an int stays too large.
        return new TargetSpec(
            target.Name,
            target.Kind,
            target.Connection?.Host ?? "",
            (int)Math.Min(target.Connection?.Port ?? 0, int.MaxValue),
            target.Connection?.Database ?? "",
            target.Connection?.Options ?? (IReadOnlyDictionary<string, string>)new Dictionary<string, string>(),
            target.Account,
            target.SecondAccount,
            target.Strategy switch
            {
                RotationStrategy.Unspecified or RotationStrategy.SingleUser => false,
                RotationStrategy.AlternatingUsers => true,
                _ => throw new ValidationException("target.strategy", "must be single-user or alternating-users"),
            },
            target.AdminSecret,
            target.ManagesAdminSecret,
            Policy(target.PasswordPolicy),
            target.Schedule?.Interval.AsTimeSpan("target.schedule.interval"),
            target.Schedule?.Cron,
            target.Schedule?.WindowStart,
            target.Schedule?.WindowEnd,
            target.Schedule?.MaxJitter.AsTimeSpan("target.schedule.max_jitter"))
        {
            CaCertificates = target.Connection?.CaCertificates ?? "",
            CertificatePin = target.Connection?.CertificatePin ?? "",
        };
    }

    public override Task<Target> GetTarget(GetTargetRequest request, ServerCallContext context) =>
        Task.FromResult(ToProto(request.Name, targets.Get(request.Name)));

    public override Task<ListTargetsResponse> ListTargets(ListTargetsRequest request, ServerCallContext context)
    {
        // Only the targets the caller may read reach it: the access table filters the listing.
        var response = new ListTargetsResponse();
        response.Targets.AddRange(targets.List().Select(t => ToProto(t.Name, t.Record)));
        return Task.FromResult(response);
    }

    public override async Task<DeleteTargetResponse> DeleteTarget(DeleteTargetRequest request, ServerCallContext context)
    {
        targetRules.CheckDelete(request.Name);
        await engine.ExclusiveAsync(request.Name, () => targets.DeleteAsync(request.Name, request.Force, context.CancellationToken), context.CancellationToken);
        return new DeleteTargetResponse();
    }

    public override async Task<RotateTargetResponse> RotateTarget(RotateTargetRequest request, ServerCallContext context)
    {
        targets.Get(request.Name);
        targetRules.CheckRotate(request.Name);
        // The rotation runs to its end even if the caller goes away: stopping between steps would
        // only leave a pending password for reconciliation.
        var entry = await engine.RotateAsync(request.Name, RotationTriggers.Manual, lifetime.ApplicationStopping).WaitAsync(context.CancellationToken);
        var response = new RotateTargetResponse { Target = ToProto(request.Name, targets.Get(request.Name)) };
        if (entry is not null)
        {
            response.Event = ToProto(entry);
        }
        return response;
    }

    public override async Task<Target> PauseTarget(PauseTargetRequest request, ServerCallContext context) =>
        ToProto(request.Name, await targets.SetPausedAsync(request.Name, paused: true, context.CancellationToken));

    public override async Task<Target> ResumeTarget(ResumeTargetRequest request, ServerCallContext context) =>
        ToProto(request.Name, await targets.SetPausedAsync(request.Name, paused: false, context.CancellationToken));

    public override Task<ListTargetHistoryResponse> ListTargetHistory(ListTargetHistoryRequest request, ServerCallContext context)
    {
        if (request.Limit > MaxHistoryPage)
        {
            throw new ValidationException("limit", $"must be at most {MaxHistoryPage}");
        }
        var response = new ListTargetHistoryResponse();
        response.Events.AddRange(targets.History(request.Name, request.Limit == 0 ? DefaultHistory : (int)request.Limit).Select(ToProto));
        return Task.FromResult(response);
    }

    public override Task<TargetCredential> GetTargetCredential(GetTargetCredentialRequest request, ServerCallContext context)
    {
        var credential = targets.Credential(request.Name);
        var response = new TargetCredential { Username = credential.Username, Password = credential.Password, Version = (ulong)credential.Version };
        if (credential.RotatedAt is { } rotated)
        {
            response.RotatedAt = Timestamp.FromDateTimeOffset(rotated);
        }
        if (credential.NextRotationAt is { } next)
        {
            response.NextRotationAt = Timestamp.FromDateTimeOffset(next);
        }
        return Task.FromResult(response);
    }

    public override async Task WatchTarget(WatchTargetRequest request, IServerStreamWriter<TargetChange> responseStream, ServerCallContext context)
    {
        var name = request.Name;
        var signal = new ChangeSignal();
        void OnChanged(string changed)
        {
            if (changed == name)
            {
                signal.Raise();
            }
        }
        records.CredentialChanged += OnChanged;
        try
        {
            (long Version, int Active)? sent = null;
            while (!context.CancellationToken.IsCancellationRequested)
            {
                var record = records.Get(name);
                if (sent != (record.Version, record.ActiveIndex))
                {
                    sent = (record.Version, record.ActiveIndex);
                    var change = new TargetChange { Name = name, Username = record.Accounts[record.ActiveIndex], Version = (ulong)record.Version };
                    if (record.LastRotatedAtUnixMs is { } rotated)
                    {
                        change.RotatedAt = ProtoMapping.Time(rotated);
                    }
                    if (!record.Paused && record.NextDueAtUnixMs is { } next)
                    {
                        change.NextRotationAt = ProtoMapping.Time(next);
                    }
                    await responseStream.WriteAsync(change, context.CancellationToken);
                }
                await signal.WaitAsync(context.CancellationToken);
            }
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            // The watcher went away.
        }
        finally
        {
            records.CredentialChanged -= OnChanged;
        }
    }

    private static DomainPolicy? Policy(Protocol.V1.PasswordPolicy? policy) => policy is null ? null : new DomainPolicy(
        policy.Length == 0 ? DomainPolicy.Default.Length : (int)Math.Min(policy.Length, int.MaxValue),
        policy.Alphabet.Length == 0 ? DomainPolicy.SafeAlphabet : policy.Alphabet,
        policy.RequireLower, policy.RequireUpper, policy.RequireDigit, policy.RequireSymbol);

    private static string? Empty(string value) => value.Length == 0 ? null : value;

    private Target ToProto(string name, TargetRecord record) => ToProto(name, record, targets.Transport(record));

    internal static Target ToProto(string name, TargetRecord record, Vault.Rotators.TransportSecurity? transport)
    {
        var target = new Target
        {
            Name = name,
            Kind = record.Kind,
            Connection = new Protocol.V1.TargetConnection { Host = record.Host, Port = (uint)record.Port, Database = record.Database, CaCertificates = record.CaCertificates, CertificatePin = record.CertificatePin },
            Account = record.Accounts[0],
            SecondAccount = record.Accounts.Count > 1 ? record.Accounts[1] : "",
            AdminSecret = record.AdminSecret,
            ManagesAdminSecret = record.ManagesAdminSecret,
            PasswordPolicy = new Protocol.V1.PasswordPolicy
            {
                Length = (uint)record.PasswordLength,
                Alphabet = record.PasswordAlphabet,
                RequireLower = record.RequireLower,
                RequireUpper = record.RequireUpper,
                RequireDigit = record.RequireDigit,
                RequireSymbol = record.RequireSymbol,
            },
            Schedule = new Protocol.V1.RotationSchedule
            {
                Cron = record.Cron ?? "",
                WindowStart = record.WindowStart ?? "",
                WindowEnd = record.WindowEnd ?? "",
                MaxJitter = Duration.FromTimeSpan(TimeSpan.FromSeconds(record.MaxJitterSeconds)),
            },
            Strategy = record.Alternating ? RotationStrategy.AlternatingUsers : RotationStrategy.SingleUser,
            Status = new TargetStatus
            {
                State = record switch
                {
                    { NeedsAttention: true } => TargetState.NeedsAttention,
                    { ConsecutiveFailures: > 0 } => TargetState.Retrying,
                    { Pending: not null } => TargetState.Rotating,
                    _ => TargetState.Ready,
                },
                Version = (ulong)record.Version,
                Paused = record.Paused,
                Drifted = record.Drifted,
                LastError = record.LastError ?? "",
                ConsecutiveFailures = (uint)record.ConsecutiveFailures,
                CurrentAccount = record.Accounts[record.ActiveIndex],
                PendingStep = record.Pending?.Step ?? "",
                TransportMode = transport?.Mode ?? "",
                TransportWarning = transport?.Warning ?? "",
            },
        };
        target.Connection.Options.Add(record.Options);
        if (record.IntervalSeconds is { } interval)
        {
            target.Schedule.Interval = Duration.FromTimeSpan(TimeSpan.FromSeconds(interval));
        }
        var status = target.Status;
        if (record.LastRotatedAtUnixMs is { } rotated)
        {
            status.LastRotatedAt = ProtoMapping.Time(rotated);
        }
        if (!record.Paused && !record.NeedsAttention && record.NextDueAtUnixMs is { } next)
        {
            status.NextRotationAt = ProtoMapping.Time(next);
        }
        if (record.DriftedAtUnixMs is { } drifted)
        {
            status.DriftedAt = ProtoMapping.Time(drifted);
        }
        if (record.LastCheckedAtUnixMs is { } checkedAt)
        {
            status.LastCheckedAt = ProtoMapping.Time(checkedAt);
        }
        return target;
    }

    internal static RotationEvent ToProto(RotationEventRecord entry) => new()
    {
        Id = (ulong)entry.Number,
        StartedAt = ProtoMapping.Time(entry.StartedAtUnixMs),
        FinishedAt = ProtoMapping.Time(entry.FinishedAtUnixMs),
        Trigger = entry.Trigger,
        Outcome = entry.Outcome switch
        {
            RotationOutcomes.Succeeded => RotationOutcome.Succeeded,
            RotationOutcomes.Failed => RotationOutcome.Failed,
            RotationOutcomes.Recovered => RotationOutcome.Recovered,
            RotationOutcomes.Discarded => RotationOutcome.Discarded,
            RotationOutcomes.NeedsAttention => RotationOutcome.NeedsAttention,
            RotationOutcomes.Drifted => RotationOutcome.Drifted,
            RotationOutcomes.DriftCleared => RotationOutcome.DriftCleared,
            RotationOutcomes.PasswordReplaced => RotationOutcome.PasswordReplaced,
            _ => RotationOutcome.Unspecified,
        },
        Step = entry.Step,
        Reason = entry.Reason,
        Version = (ulong)entry.Version,
        Account = entry.Account,
    };
}
