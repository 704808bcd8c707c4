using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Vault.Clocks;
using Vault.Rotators;
using Vault.Rotators.Passwords;
using Vault.Server.Audit;
using Vault.Server.Secrets;
using Vault.Server.Storage;

namespace Vault.Server.Rotation;

/// <summary>
/// Runs the rotation state machine for one target at a time: <c>create</c> (new password stored
/// encrypted as pending) → <c>set</c> (applied to the system) → <c>test</c> (a login as the
/// account) → <c>finish</c> (pending becomes current), each step durable before the next. A
/// failed set or test restores the current password; a target found with a pending password
/// (after a crash, or a rollback that could not reach the system) is reconciled by trying both.
/// One lock per target keeps manual, scheduled and reconciling runs of a target from overlapping.
/// </summary>
public sealed class RotationEngine(
    TargetManager targets,
    TargetRepository records,
    IVaultStore store,
    KvEngine kv,
    RotatorRegistry rotators,
    AuditLog audit,
    IRotationStepObserver observer,
    TimeProvider clock,
    IOptions<RotationOptions> options,
    Telemetry.VaultMetrics metrics,
    Telemetry.Events.SecurityEvents events,
    ILogger<RotationEngine> logger,
    Cluster.NodeRole role)
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);

    // Statements sent to a target system can outlive their sender: a statement waiting on a lock
    // another session holds keeps waiting on the server after the vault that sent it is killed
    // (servers notice a dead client only when they next write to it), and is applied when the
    // lock is released. Two ways to keep reconcile from deciding before then: end the dead
    // process's sessions first (pg_terminate_backend, KILL), or bound every statement on the
    // server and wait out the bound. The bound is what is used: the server enforces it whether or
    // not the admin may end other sessions, it needs no way to tell the dead process's sessions
    // from live ones (other vaults, other tools with the same admin), and it covers the vault's
    // own in-process case (a connection that broke mid-statement) the same way. Its cost is a
    // wait of at most the statement timeout, only when a rotation was interrupted.
    private readonly DateTimeOffset _startedAt = clock.GetUtcNow();
    // Per target, when statements this process sent without learning their outcome have ended.
    private readonly ConcurrentDictionary<string, DateTimeOffset> _strayUntil = new(StringComparer.Ordinal);

    /// <summary>Added to the statement timeout: the server's timer granularity and the statement's time on the wire.</summary>
    private static readonly TimeSpan StrayMargin = TimeSpan.FromSeconds(2);

    /// <summary>Rotates <paramref name="name"/> now (after any rotation of it already running), reconciling an interrupted one first.</summary>
    /// <returns>The history event this run wrote, or null when a scheduled run found nothing to do.</returns>
    /// <exception cref="NotFoundException">No such target.</exception>
    /// <exception cref="PreconditionException">A manual rotation of a paused target.</exception>
    public async Task<RotationEventRecord?> RotateAsync(string name, string trigger, CancellationToken cancellationToken)
    {
        var record = records.Get(name);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var held = new List<SemaphoreSlim>();
        try
        {
            // A target whose admin credential another target manages must not rotate while that
            // one does: between its set and finish the admin secret holds a dead password.
            foreach (var lockName in LockNames(name, record))
            {
                var gate = Lock(lockName);
                await gate.WaitAsync(cancellationToken);
                held.Add(gate);
            }
            var entry = await RotateLockedAsync(name, trigger, cancellationToken);
            if (entry is not null)
            {
                metrics.RotationFinished(name, record.Kind, entry.Outcome, System.Diagnostics.Stopwatch.GetElapsedTime(started));
                Publish(name, record.Kind, entry);
            }
            return entry;
        }
        finally
        {
            for (var i = held.Count - 1; i >= 0; i--)
            {
                held[i].Release();
            }
        }
    }

    /// <summary>Runs <paramref name="work"/> while no rotation of <paramref name="name"/> runs (e.g. deleting it mid-rotation would lose the password just set).</summary>
    public async Task ExclusiveAsync(string name, Func<Task> work, CancellationToken cancellationToken)
    {
        var gate = Lock(name);
        await gate.WaitAsync(cancellationToken);
        try
        {
            await work();
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Logs in with the current password and records drift (or its end). Skipped while the target is busy.</summary>
    public async Task CheckDriftAsync(string name, CancellationToken cancellationToken)
    {
        var gate = Lock(name);
        if (!await gate.WaitAsync(0, cancellationToken))
        {
            return;
        }
        try
        {
            var record = records.Get(name);
            var now = clock.GetUtcNow();
            var next = now + options.Value.DriftCheckInterval;
            var stored = record.Passwords[record.ActiveIndex];
            LoginCheck? check = null;
            if (record.Pending is null && stored is not null && rotators.TryGet(record.Kind, out var rotator))
            {
                var account = record.Accounts[record.ActiveIndex];
                // Any failure to check (the database is gone, an odd answer) says nothing about drift.
                check = await SafeVerifyAsync(rotator, targets.Connection(record, options.Value),
                    new Credential(account, records.DecryptPassword(name, record, stored)), cancellationToken);
            }
            var finished = clock.GetUtcNow();
            RotationEventRecord? entry = null;
            await store.WriteAsync(tx =>
            {
                var r = records.Load(tx, name) ?? throw new NotFoundException($"no target named '{name}'");
                r.NextDriftCheckAtUnixMs = next.ToUnixTimeMilliseconds();
                if (check is not null && check.Outcome != LoginOutcome.Unreachable && r.Passwords[r.ActiveIndex]?.Serial == stored?.Serial)
                {
                    r.LastCheckedAtUnixMs = finished.ToUnixTimeMilliseconds();
                    var account = r.Accounts[r.ActiveIndex];
                    if (check.Outcome == LoginOutcome.Refused && !r.Drifted)
                    {
                        r.Drifted = true;
                        r.DriftedAtUnixMs = finished.ToUnixTimeMilliseconds();
                        entry = TargetRepository.AppendEvent(tx, name, r, now, finished, RotationTriggers.DriftCheck, RotationOutcomes.Drifted, "",
                            $"the current password was refused: {check.Reason}", account);
                    }
                    else if (check.Outcome == LoginOutcome.Accepted && r.Drifted)
                    {
                        r.Drifted = false;
                        r.DriftedAtUnixMs = null;
                        entry = TargetRepository.AppendEvent(tx, name, r, now, finished, RotationTriggers.DriftCheck, RotationOutcomes.DriftCleared, "",
                            "the current password logs in again", account);
                    }
                }
                records.Save(tx, name, r);
                return true;
            }, cancellationToken);
            if (entry is not null)
            {
                if (entry.Outcome == RotationOutcomes.Drifted)
                {
                    RotationLog.Drifted(logger, name, check?.Reason ?? "");
                }
                else
                {
                    RotationLog.DriftCleared(logger, name);
                }
                Publish(name, record.Kind, entry);
                await AuditAsync(name, entry);
            }
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task<RotationEventRecord?> RotateLockedAsync(string name, string trigger, CancellationToken cancellationToken)
    {
        var record = records.Get(name);
        var now = clock.GetUtcNow();
        if (trigger == RotationTriggers.Manual && record.Paused)
        {
            throw new PreconditionException($"target '{name}' is paused; resume it first");
        }
        if (trigger is RotationTriggers.Scheduled or RotationTriggers.Registration
            && (record.Paused || record.NeedsAttention || record.NextDueAtUnixMs is not { } due || due > now.ToUnixTimeMilliseconds()))
        {
            return null;
        }
        if (trigger == RotationTriggers.Startup && record.Pending is null)
        {
            return null;
        }
        if (record.Pending is not null)
        {
            // Whatever asked, the pending password is tried first: it may be the one the system has.
            var reconciled = await ReconcileAsync(name, record, trigger, cancellationToken);
            record = records.Get(name);
            var freshRotationWanted = trigger == RotationTriggers.Manual && record.NeedsAttention && !record.ManagesAdminSecret;
            if (freshRotationWanted)
            {
                // Neither password opens the account and an admin asked for a rotation: the admin
                // credential sets a new one without needing either. (A target that is its own
                // admin cannot: the admin credential is the lost one.)
                record = await ClearPendingAsync(name, cancellationToken);
            }
            else if (record.Pending is not null || record.NeedsAttention || reconciled.Outcome != RotationOutcomes.Discarded || trigger == RotationTriggers.Startup)
            {
                return reconciled;
            }
        }
        return await RunStepsAsync(name, record, trigger, cancellationToken);
    }

    private async Task<RotationEventRecord> RunStepsAsync(string name, TargetRecord record, string trigger, CancellationToken cancellationToken)
    {
        var started = clock.GetUtcNow();
        var stopwatch = Stopwatch.StartNew();
        var rotator = rotators.Get(record.Kind);
        var connection = targets.Connection(record, options.Value);
        var index = record.Alternating ? 1 - record.ActiveIndex : 0;
        var account = record.Accounts[index];

        Credential admin;
        string password;
        try
        {
            admin = targets.ReadAdminSecret(record.AdminSecret, "admin_secret");
            password = PasswordGenerator.Generate(TargetManager.Policy(record));
        }
        catch (Exception ex) when (ex is ValidationException or NotFoundException or ArgumentException)
        {
            return await FailAsync(name, started, trigger, RotationSteps.Create, $"cannot start: {ex.Message}", cancellationToken);
        }

        if (record.Alternating && record.LastRotatedAtUnixMs is { } last)
        {
            // The account about to change was current until the last rotation: give clients that
            // read it just before the switch time to open their connection.
            await clock.UntilAsync(DateTimeOffset.FromUnixTimeMilliseconds(last) + options.Value.AlternatingGrace, cancellationToken);
        }

        // create: the new password is durable (encrypted) before any system sees it.
        await store.WriteAsync(tx =>
        {
            var r = records.Load(tx, name) ?? throw new NotFoundException($"no target named '{name}'");
            if (r.Pending is not null)
            {
                throw new PreconditionException($"target '{name}' is already mid-rotation");
            }
            r.Pending = new PendingRotation
            {
                AccountIndex = index,
                Password = records.EncryptPassword(name, r, password),
                Step = RotationSteps.Create,
                Trigger = trigger,
                StartedAtUnixMs = started.ToUnixTimeMilliseconds(),
                StatementTimeoutMs = (long)options.Value.StatementTimeout.TotalMilliseconds,
            };
            records.Save(tx, name, r);
            return true;
        }, cancellationToken);
        await observer.AfterStepAsync(name, RotationSteps.Create, cancellationToken);

        // set
        try
        {
            await rotator.SetPasswordAsync(connection, admin, account, password, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            var failure = Describe(name, RotationSteps.Set, ex);
            // Never sent, or refused by the system: nothing changed. A dropped connection may have applied it.
            NoteStray(name, ex);
            if (ex is RotatorException { ChangedNothing: true } unchanged)
            {
                var note = unchanged.Effect == RotatorEffect.NotSent ? "nothing was sent to the system, so nothing was changed" : "nothing was changed";
                await ClearPendingAsync(name, cancellationToken);
                return await FailAsync(name, started, trigger, RotationSteps.Set, $"{failure}; {note}", cancellationToken);
            }
            return await RollBackAsync(name, started, trigger, RotationSteps.Set, failure, knownApplied: false, admin, cancellationToken);
        }
        // The set is recorded, but not waited for: crash recovery does not need it (a pending
        // password is reconciled by trying it and the current one, after any statement still in
        // flight has timed out), so its commit overlaps the login below rather than delaying it.
        var setRecorded = AdvanceAsync(name, RotationSteps.Set, cancellationToken);
        await observer.AfterStepAsync(name, RotationSteps.Set, cancellationToken);

        // test: log in as the account with the new password, on a fresh connection.
        LoginCheck check;
        try
        {
            check = await rotator.VerifyLoginAsync(connection, new Credential(account, password), cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            check = new LoginCheck(LoginOutcome.Unreachable, Describe(name, RotationSteps.Test, ex));
        }
        finally
        {
            // Its failure (sealed, the store down) is this rotation's, as when it was awaited in turn.
            await setRecorded;
        }
        if (check.Outcome == LoginOutcome.Refused)
        {
            return await RollBackAsync(name, started, trigger, RotationSteps.Test, $"the new password was refused at login: {check.Reason}", knownApplied: true, admin, cancellationToken);
        }
        if (check.Outcome == LoginOutcome.Unreachable)
        {
            // Set, but unverified: keep it pending; the next attempt reconciles by trying both.
            return await FailAsync(name, started, trigger, RotationSteps.Test, $"could not log in to verify the new password: {check.Reason}; it stays pending until the target answers", cancellationToken);
        }
        // The test is not recorded on its own: the outcome follows at once, and a crash between
        // them is reconciled as one after the set is (the new password logs in: finished).
        await observer.AfterStepAsync(name, RotationSteps.Test, cancellationToken);

        var entry = await FinishAsync(name, started, trigger, RotationOutcomes.Succeeded, "", cancellationToken);
        RotationLog.Rotated(logger, name, account, entry.Version, stopwatch.ElapsedMilliseconds, trigger);
        await observer.AfterStepAsync(name, RotationSteps.Finish, cancellationToken);
        return entry;
    }

    /// <summary>A pending password was found: whichever of pending / current logs in wins.</summary>
    private async Task<RotationEventRecord> ReconcileAsync(string name, TargetRecord record, string trigger, CancellationToken cancellationToken)
    {
        var started = clock.GetUtcNow();
        var pending = record.Pending!;
        var rotator = rotators.Get(record.Kind);
        var connection = targets.Connection(record, options.Value);
        var account = record.Accounts[pending.AccountIndex];
        await WaitForStrayStatementsAsync(name, pending, cancellationToken);
        var pendingCheck = await SafeVerifyAsync(rotator, connection, new Credential(account, records.DecryptPassword(name, record, pending.Password)), cancellationToken);
        if (pendingCheck.Outcome == LoginOutcome.Accepted)
        {
            var recovered = await FinishAsync(name, started, trigger, RotationOutcomes.Recovered,
                $"an interrupted rotation (last durable step: {pending.Step}) was finished: its new password logs in", cancellationToken);
            RotationLog.Reconciled(logger, name, recovered.Outcome);
            return recovered;
        }
        var current = record.Passwords[pending.AccountIndex];
        var currentCheck = current is null ? null
            : await SafeVerifyAsync(rotator, connection, new Credential(account, records.DecryptPassword(name, record, current)), cancellationToken);
        // No earlier password (onboarded with rotate-now, or an alternating account never set): a
        // refused pending password just means the set never landed; rotate again.
        var noEarlierPassword = current is null && pendingCheck.Outcome == LoginOutcome.Refused;
        if (currentCheck?.Outcome == LoginOutcome.Accepted || noEarlierPassword)
        {
            var discarded = await ClearPendingWithEventAsync(name, started, trigger, RotationOutcomes.Discarded,
                $"an interrupted rotation (last durable step: {pending.Step}) was rolled back: the current password still logs in", cancellationToken);
            RotationLog.Reconciled(logger, name, discarded.Outcome);
            return discarded;
        }
        if (pendingCheck.Outcome == LoginOutcome.Unreachable || currentCheck?.Outcome == LoginOutcome.Unreachable)
        {
            var reason = pendingCheck.Outcome == LoginOutcome.Unreachable ? pendingCheck.Reason : currentCheck!.Reason;
            return await FailAsync(name, started, trigger, RotationSteps.Test, $"cannot reconcile an interrupted rotation yet: {reason}", cancellationToken);
        }
        var why = $"pending password: {pendingCheck.Reason}; current password: {(currentCheck is null ? "none stored" : currentCheck.Reason)}";
        RotationLog.NeedsAttention(logger, name, why);
        RotationEventRecord? entry = null;
        await store.WriteAsync(tx =>
        {
            var r = records.Load(tx, name) ?? throw new NotFoundException($"no target named '{name}'");
            r.NeedsAttention = true;
            r.LastError = $"neither password logs in ({why}); rotate it manually once the account is fixed";
            r.NextDueAtUnixMs = null;
            r.DueTrigger = null;
            entry = TargetRepository.AppendEvent(tx, name, r, started, clock.GetUtcNow(), trigger, RotationOutcomes.NeedsAttention, pending.Step, r.LastError, account);
            records.Save(tx, name, r);
            return true;
        }, cancellationToken);
        await AuditAsync(name, entry!);
        return entry!;
    }

    /// <summary>
    /// Waits until no admin statement of an earlier run (a killed process, or this one on a
    /// connection that broke) can still take effect: until the statement timeout it ran under
    /// (plus a margin) has passed since this process started, or since this process last lost
    /// track of a statement for the target. A rotation stopped after its test step sent nothing
    /// since its set was answered, and does not wait.
    /// </summary>
    private async Task WaitForStrayStatementsAsync(string name, PendingRotation pending, CancellationToken cancellationToken)
    {
        var until = DateTimeOffset.MinValue;
        if (pending.Step is RotationSteps.Create or RotationSteps.Set)
        {
            // Create: its set may be in flight. Set: a rollback after a refused login may be.
            var bound = pending.StatementTimeoutMs > 0 ? TimeSpan.FromMilliseconds(pending.StatementTimeoutMs) : options.Value.StatementTimeout;
            // Since this node started — or, one of several, became active: the node before it may
            // have sent the statement until then.
            var since = role.BecameActiveAt is { } promoted && promoted > _startedAt ? promoted : _startedAt;
            until = since + bound + StrayMargin;
        }
        if (_strayUntil.TryGetValue(name, out var mine) && mine > until)
        {
            until = mine;
        }
        var wait = until - clock.GetUtcNow();
        if (wait > TimeSpan.Zero)
        {
            RotationLog.WaitingForStrayStatements(logger, name, (long)wait.TotalMilliseconds);
            await clock.UntilAsync(until, cancellationToken);
        }
        _strayUntil.TryRemove(name, out _);
    }

    /// <summary>Remembers that a statement for <paramref name="name"/> may still be on the system when <paramref name="ex"/> does not say it changed nothing.</summary>
    private void NoteStray(string name, Exception ex)
    {
        if (ex is not RotatorException { ChangedNothing: true })
        {
            var until = clock.GetUtcNow() + options.Value.StatementTimeout + StrayMargin;
            _strayUntil.AddOrUpdate(name, until, (_, earlier) => earlier > until ? earlier : until);
        }
    }

    /// <param name="knownApplied">True when the set is known to have landed; false when it may or may not have.</param>
    private async Task<RotationEventRecord> RollBackAsync(string name, DateTimeOffset started, string trigger, string step, string reason, bool knownApplied, Credential admin, CancellationToken cancellationToken)
    {
        var record = records.Get(name);
        var pending = record.Pending!;
        var account = record.Accounts[pending.AccountIndex];
        var current = record.Passwords[pending.AccountIndex];
        string note;
        var keepPending = false;
        if (current is null)
        {
            // Nothing to restore; if the set may have landed, the pending password may be the
            // system's now: keep it for reconciliation.
            keepPending = !knownApplied;
            note = keepPending ? "there is no earlier password to restore; the new one stays pending until a login decides" : "there is no earlier password to restore";
        }
        else
        {
            var rotator = rotators.Get(record.Kind);
            var connection = targets.Connection(record, options.Value);
            var currentPassword = records.DecryptPassword(name, record, current);
            try
            {
                await RestoreAsync(rotator, connection, record, admin, account, currentPassword, records.DecryptPassword(name, record, pending.Password), cancellationToken);
                note = "rolled back to the current password";
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                NoteStray(name, ex);
                keepPending = true;
                note = $"the rollback failed too ({Describe(name, "rollback", ex)}); the next attempt reconciles";
            }
        }
        if (!keepPending)
        {
            await ClearPendingAsync(name, cancellationToken);
        }
        return await FailAsync(name, started, trigger, step, $"{reason}; {note}", cancellationToken);
    }

    /// <summary>Sets the account back to its current password. A target that is its own admin has just changed its own password, so it logs in with the new one to undo it.</summary>
    private static async Task RestoreAsync(ICredentialRotator rotator, TargetConnection connection, TargetRecord record, Credential admin, string account, string currentPassword, string pendingPassword, CancellationToken cancellationToken)
    {
        if (record.ManagesAdminSecret && admin.Username == account)
        {
            try
            {
                await rotator.SetPasswordAsync(connection, admin with { Password = pendingPassword }, account, currentPassword, cancellationToken);
                return;
            }
            catch (RotatorException ex) when (ex.Failure == RotatorFailure.AdminRefused)
            {
                // The new password never took: the current one is still the admin's.
            }
        }
        await rotator.SetPasswordAsync(connection, admin, account, currentPassword, cancellationToken);
    }

    private async Task<RotationEventRecord> FinishAsync(string name, DateTimeOffset started, string trigger, string outcome, string reason, CancellationToken cancellationToken)
    {
        // Read what the write needs before it: a unit of work may only read through its writer.
        var before = records.Get(name);
        var (adminData, adminVersion) = before.ManagesAdminSecret ? AdminSecretFields(before.AdminSecret) : (null, 0L);
        RotationEventRecord? entry = null;
        await store.WriteAsync(tx =>
        {
            var r = records.Load(tx, name) ?? throw new NotFoundException($"no target named '{name}'");
            var pending = r.Pending ?? throw new PreconditionException($"target '{name}' has no rotation to finish");
            var now = clock.GetUtcNow();
            if (!r.Alternating)
            {
                r.Previous = r.Passwords[0];
            }
            r.Passwords[pending.AccountIndex] = pending.Password;
            r.ActiveIndex = pending.AccountIndex;
            r.Version++;
            r.LastRotatedAtUnixMs = now.ToUnixTimeMilliseconds();
            r.LastCheckedAtUnixMs = now.ToUnixTimeMilliseconds();
            r.Pending = null;
            r.ConsecutiveFailures = 0;
            r.LastError = null;
            r.NeedsAttention = false;
            r.Drifted = false;
            r.DriftedAtUnixMs = null;
            r.NextDueAtUnixMs = TargetManager.Schedule(r).NextDue(name, now)?.ToUnixTimeMilliseconds();
            r.DueTrigger = null;
            if (r.ManagesAdminSecret)
            {
                // The verified password becomes the admin secret's in the same commit, keeping its other fields.
                var data = adminData ?? new Dictionary<string, string>(StringComparer.Ordinal);
                data["username"] = r.Accounts[0];
                data["password"] = records.DecryptPassword(name, r, pending.Password);
                // Against the version read above: a concurrent KV write fails this commit (the
                // rotation stays pending and is finished again) rather than being overwritten.
                kv.PutWithin(tx, r.AdminSecret, data, (ulong)adminVersion);
            }
            entry = TargetRepository.AppendEvent(tx, name, r, started, now, trigger, outcome, "", reason, r.Accounts[pending.AccountIndex]);
            records.Save(tx, name, r);
            return true;
        }, cancellationToken);
        records.NotifyChanged();
        records.NotifyCredentialChanged(name);
        await AuditAsync(name, entry!);
        return entry!;
    }

    private (Dictionary<string, string> Data, long Version) AdminSecretFields(string path)
    {
        try
        {
            var secret = kv.Get(path, 0);
            return (new Dictionary<string, string>(secret.Data, StringComparer.Ordinal), secret.Version);
        }
        catch (NotFoundException)
        {
            // Deleted since registration (or its current version deleted): written afresh.
            return (new Dictionary<string, string>(StringComparer.Ordinal), kv.Exists(path) ? kv.GetMetadata(path).Metadata.CurrentVersion : 0);
        }
    }

    private async Task<RotationEventRecord> FailAsync(string name, DateTimeOffset started, string trigger, string step, string reason, CancellationToken cancellationToken)
    {
        RotationEventRecord? entry = null;
        long retrySeconds = 0;
        await store.WriteAsync(tx =>
        {
            var r = records.Load(tx, name) ?? throw new NotFoundException($"no target named '{name}'");
            var now = clock.GetUtcNow();
            r.ConsecutiveFailures++;
            r.LastError = reason;
            var retry = Backoff(r.ConsecutiveFailures);
            retrySeconds = (long)retry.TotalSeconds;
            r.NextDueAtUnixMs = (now + retry).ToUnixTimeMilliseconds();
            r.DueTrigger = null;
            var account = r.Accounts[r.Pending?.AccountIndex ?? (r.Alternating ? 1 - r.ActiveIndex : 0)];
            entry = TargetRepository.AppendEvent(tx, name, r, started, now, trigger, RotationOutcomes.Failed, step, reason, account);
            records.Save(tx, name, r);
            return true;
        }, cancellationToken);
        records.NotifyChanged();
        RotationLog.RotationFailed(logger, name, step, trigger, reason, retrySeconds);
        await AuditAsync(name, entry!);
        return entry!;
    }

    private async Task<TargetRecord> ClearPendingAsync(string name, CancellationToken cancellationToken) =>
        await store.WriteAsync(tx =>
        {
            var r = records.Load(tx, name) ?? throw new NotFoundException($"no target named '{name}'");
            r.Pending = null;
            records.Save(tx, name, r);
            return r;
        }, cancellationToken);

    private async Task<RotationEventRecord> ClearPendingWithEventAsync(string name, DateTimeOffset started, string trigger, string outcome, string reason, CancellationToken cancellationToken)
    {
        RotationEventRecord? entry = null;
        await store.WriteAsync(tx =>
        {
            var r = records.Load(tx, name) ?? throw new NotFoundException($"no target named '{name}'");
            var account = r.Accounts[r.Pending?.AccountIndex ?? r.ActiveIndex];
            r.Pending = null;
            var now = clock.GetUtcNow();
            var schedule = TargetManager.Schedule(r);
            // The interrupted rotation did not happen: due again soon, not a whole period later.
            r.NextDueAtUnixMs = schedule.IsManualOnly ? null : (now + options.Value.RetryBase).ToUnixTimeMilliseconds();
            r.DueTrigger = null;
            entry = TargetRepository.AppendEvent(tx, name, r, started, now, trigger, outcome, "", reason, account);
            records.Save(tx, name, r);
            return true;
        }, cancellationToken);
        records.NotifyChanged();
        await AuditAsync(name, entry!);
        return entry!;
    }

    private Task AdvanceAsync(string name, string step, CancellationToken cancellationToken) =>
        store.WriteAsync(tx =>
        {
            var r = records.Load(tx, name) ?? throw new NotFoundException($"no target named '{name}'");
            r.Pending!.Step = step;
            records.Save(tx, name, r);
            return true;
        }, cancellationToken);

    private TimeSpan Backoff(int failures)
    {
        var o = options.Value;
        var factor = Math.Pow(2, Math.Min(failures - 1, 30));
        var delay = TimeSpan.FromTicks((long)Math.Min(o.RetryBase.Ticks * factor, o.RetryMax.Ticks));
        return delay < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : delay;
    }

    private async Task<LoginCheck> SafeVerifyAsync(ICredentialRotator rotator, TargetConnection connection, Credential credential, CancellationToken cancellationToken)
    {
        try
        {
            return await rotator.VerifyLoginAsync(connection, credential, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return new LoginCheck(LoginOutcome.Unreachable, Describe("", RotationSteps.Test, ex));
        }
    }

    /// <summary>A rotator's own message (it never holds a password); anything else is logged by type only and summarised.</summary>
    private string Describe(string name, string step, Exception ex)
    {
        if (ex is RotatorException rotatorException)
        {
            return $"{Kebab(rotatorException.Failure)}: {rotatorException.Message}";
        }
        RotationLog.Unexpected(logger, name, step, ex.GetType().FullName ?? "exception");
        return $"unexpected {ex.GetType().Name} (see the server log)";
    }

    private static string Kebab(RotatorFailure failure) => failure switch
    {
        RotatorFailure.Unreachable => "unreachable",
        RotatorFailure.AdminRefused => "admin refused",
        RotatorFailure.PasswordRejected => "rejected by the target's password policy",
        RotatorFailure.AccountNotFound => "account not found",
        _ => "error",
    };

    /// <summary>Runs the daemon starts on its own are audited here; a manual run is audited as the RPC that asked for it.</summary>
    /// <summary>The security event of a history entry: names, the step and the reason the history shows, never a password.</summary>
    private void Publish(string name, string kind, RotationEventRecord entry) =>
        events.Publish(Telemetry.Events.SecurityEventTypes.OfRotation(entry.Outcome),
            ("target", name), ("kind", kind), ("trigger", entry.Trigger), ("account", entry.Account), ("step", entry.Step), ("reason", entry.Reason),
            ("version", entry.Version > 0 ? entry.Version.ToString(System.Globalization.CultureInfo.InvariantCulture) : null));

    private async Task AuditAsync(string name, RotationEventRecord entry)
    {
        if (entry.Trigger == RotationTriggers.Manual)
        {
            return;
        }
        try
        {
            await audit.AppendAsync(new AuditEvent(Guid.NewGuid().ToString("N"), "system:rotation", $"rotation.{entry.Trigger}",
                $"rotation/target/{name}", entry.Outcome, entry.Step, ""));
        }
        catch (AuditUnavailableException)
        {
            // The rotation already happened and is in the target's history; the audit log reports its own failure.
        }
    }

    private IEnumerable<string> LockNames(string name, TargetRecord record)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal) { name };
        names.UnionWith(records.ManagersOf(record.AdminSecret ?? ""));
        return names;
    }

    private SemaphoreSlim Lock(string name) => _locks.GetOrAdd(name, _ => new SemaphoreSlim(1, 1));
}
