using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Vault.Protocol.V1;
using Vault.Server.Auth;
using Vault.Server.Rotation;
using Vault.Server.Secrets;
using DomainPolicy = Vault.Rotators.Passwords.PasswordPolicy;

namespace Vault.Server.Grpc;

/// <summary>Rotation targets over gRPC: maps messages to <see cref="TargetManager"/> and <see cref="RotationEngine"/>.</summary>
public sealed class TargetGrpcService(TargetManager targets, RotationEngine engine, Leases.LeaseManager leases, IHostApplicationLifetime lifetime) : TargetService.TargetServiceBase
{
    private const int DefaultHistory = 50;
    private const int MaxHistoryPage = 1000;

    public override async Task<Target> PutTarget(PutTargetRequest request, ServerCallContext context)
    {
        var target = request.Target ?? throw new ValidationException("target", "is required");
        // Whoever points a target at an admin credential must be allowed to read it: the vault
        // presents it to the target's host, which the caller chooses.
        if (!string.IsNullOrEmpty(target.AdminSecret))
        {
            try
            {
                SecretValidation.Path(target.AdminSecret);
            }
            catch (ValidationException ex)
            {
                throw new ValidationException("target.admin_secret", ex.Message);
            }
            var acl = VaultInterceptor.Caller(context).Acl;
            if (!acl.Allows($"kv/{target.AdminSecret}", Capability.Read))
            {
                throw new AccessDeniedException($"permission denied: registering a target with admin secret '{target.AdminSecret}' needs read on kv/{target.AdminSecret}");
            }
            // The vault will write verified passwords into a secret it manages.
            if (target.ManagesAdminSecret && !acl.Allows($"kv/{target.AdminSecret}", Capability.Update))
            {
                throw new AccessDeniedException($"permission denied: managing admin secret '{target.AdminSecret}' needs update on kv/{target.AdminSecret}");
            }
        }
        var spec = new TargetSpec(
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
            target.Schedule?.MaxJitter.AsTimeSpan("target.schedule.max_jitter"));
        if (target.Connection?.Port > 65535)
        {
            throw new ValidationException("target.connection.port", "must be between 1 and 65535 (0 for the kind's default)");
        }
        TargetRecord? record = null;
        // Under the target's rotation lock: a rotation must not set a password on one host and
        // store it for another.
        await engine.ExclusiveAsync(target.Name, async () =>
        {
            if (leases.SetOf(target.Name) is { } set
                && (spec.AlternatingUsers || spec.ManagesAdminSecret || spec.Interval is not null || !string.IsNullOrWhiteSpace(spec.Cron)))
            {
                // Its password changes only at check-in; anything else would kill a holder's copy.
                throw new PreconditionException($"target '{target.Name}' is lent by set '{set}': it must stay single-user with no schedule");
            }
            if (request.RotateNow && leases.IsLent(target.Name))
            {
                throw new PreconditionException($"target '{target.Name}' is checked out; it rotates when checked in");
            }
            if (targets.TryGet(target.Name) is { } existingTarget && Moves(existingTarget, spec))
            {
                if (leases.HasLeasesOn(target.Name))
                {
                    // Leases remember the user, not where it lives: ending them needs the old place.
                    throw new PreconditionException($"target '{target.Name}' has live leases; revoke them before moving it");
                }
                // Moving a target sends its stored passwords to the new place: only for whoever
                // could read them (and the old admin credential) anyway.
                var acl = VaultInterceptor.Caller(context).Acl;
                if (!acl.Allows($"rotation/target/{target.Name}/credential", Capability.Read) || !acl.Allows($"kv/{existingTarget.AdminSecret}", Capability.Read))
                {
                    throw new AccessDeniedException($"permission denied: moving target '{target.Name}' (connection or admin secret) needs read on rotation/target/{target.Name}/credential and on kv/{existingTarget.AdminSecret}");
                }
            }
            record = await targets.PutAsync(spec, request.RotateNow, Empty(request.CurrentPassword), Empty(request.SecondCurrentPassword), verify: !request.SkipVerification, context.CancellationToken);
        }, context.CancellationToken);
        return ToProto(target.Name, record!);
    }

    public override Task<Target> GetTarget(GetTargetRequest request, ServerCallContext context) =>
        Task.FromResult(ToProto(request.Name, targets.Get(request.Name)));

    public override Task<ListTargetsResponse> ListTargets(ListTargetsRequest request, ServerCallContext context)
    {
        var response = new ListTargetsResponse();
        var acl = VaultInterceptor.Caller(context).Acl;
        response.Targets.AddRange(targets.List()
            .Where(t => acl.Allows($"rotation/target/{t.Name}", Capability.Read))
            .Select(t => ToProto(t.Name, t.Record)));
        return Task.FromResult(response);
    }

    public override async Task<DeleteTargetResponse> DeleteTarget(DeleteTargetRequest request, ServerCallContext context)
    {
        if (leases.RolesOn(request.Name) is { Count: > 0 } roles)
        {
            throw new PreconditionException($"target '{request.Name}' is used by dynamic role(s) {string.Join(", ", roles)}; delete them first");
        }
        if (leases.SetOf(request.Name) is { } set)
        {
            throw new PreconditionException($"target '{request.Name}' is lent by check-out set '{set}'; remove it from the set first");
        }
        if (leases.HasLeasesOn(request.Name))
        {
            throw new PreconditionException($"target '{request.Name}' has live leases; revoke them first");
        }
        await engine.ExclusiveAsync(request.Name, () => targets.DeleteAsync(request.Name, request.Force, context.CancellationToken), context.CancellationToken);
        return new DeleteTargetResponse();
    }

    public override async Task<RotateTargetResponse> RotateTarget(RotateTargetRequest request, ServerCallContext context)
    {
        targets.Get(request.Name);
        if (leases.IsLent(request.Name))
        {
            throw new PreconditionException($"target '{request.Name}' is checked out; it rotates when checked in");
        }
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
        var signal = System.Threading.Channels.Channel.CreateBounded<bool>(new System.Threading.Channels.BoundedChannelOptions(1)
        {
            FullMode = System.Threading.Channels.BoundedChannelFullMode.DropWrite,
        });
        void OnChanged(string changed)
        {
            if (changed == name)
            {
                signal.Writer.TryWrite(true);
            }
        }
        targets.CredentialChanged += OnChanged;
        try
        {
            (long Version, int Active)? sent = null;
            while (!context.CancellationToken.IsCancellationRequested)
            {
                var record = targets.Get(name);
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
                // A missed signal costs at most a minute: the record is read again anyway.
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
                timeout.CancelAfter(TimeSpan.FromMinutes(1));
                try
                {
                    await signal.Reader.ReadAsync(timeout.Token);
                }
                catch (OperationCanceledException) when (!context.CancellationToken.IsCancellationRequested)
                {
                }
            }
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            // The watcher went away.
        }
        finally
        {
            targets.CredentialChanged -= OnChanged;
        }
    }

    private static DomainPolicy? Policy(Protocol.V1.PasswordPolicy? policy) => policy is null ? null : new DomainPolicy(
        policy.Length == 0 ? DomainPolicy.Default.Length : (int)Math.Min(policy.Length, int.MaxValue),
        policy.Alphabet.Length == 0 ? DomainPolicy.SafeAlphabet : policy.Alphabet,
        policy.RequireLower, policy.RequireUpper, policy.RequireDigit, policy.RequireSymbol);

    private static string? Empty(string value) => value.Length == 0 ? null : value;

    private static bool Moves(TargetRecord existing, TargetSpec spec) =>
        !string.Equals(existing.Host, spec.Host.Trim(), StringComparison.Ordinal)
        || existing.Port != spec.Port
        || !string.Equals(existing.Database, spec.Database ?? "", StringComparison.Ordinal)
        || !string.Equals(existing.AdminSecret, spec.AdminSecret, StringComparison.Ordinal)
        || existing.ManagesAdminSecret != spec.ManagesAdminSecret
        || existing.Options.Count != spec.Options.Count
        || existing.Options.Any(o => !spec.Options.TryGetValue(o.Key, out var v) || v != o.Value);

    internal static Target ToProto(string name, TargetRecord record)
    {
        var target = new Target
        {
            Name = name,
            Kind = record.Kind,
            Connection = new Protocol.V1.TargetConnection { Host = record.Host, Port = (uint)record.Port, Database = record.Database },
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
