using System.Security.Cryptography;
using Vault.Rotators;
using Vault.Rotators.Passwords;
using Vault.Server.Auth;

namespace Vault.Server.Rotation;

/// <summary>
/// What an admin or an application does with rotation targets: register or change one, read,
/// delete, pause / resume, history and the current credential. Kept to the use cases: the checks
/// of a registration are <see cref="TargetSpecValidator"/>'s, how records are stored, sealed and
/// announced is <see cref="TargetRepository"/>'s, and the rotation itself is
/// <see cref="RotationEngine"/>'s.
/// </summary>
public sealed class TargetManager(TargetRepository repository, TargetSpecValidator validator, AdminCredentialReader adminCredentials, TargetTrust trust, TimeProvider clock)
{
    /// <summary>How the vault reaches the record's system (its TLS mode, and what is weaker than verified TLS about it); null for a kind no rotator serves.</summary>
    public TransportSecurity? Transport(TargetRecord record) => trust.Transport(record);

    /// <summary>
    /// Whether <paramref name="spec"/> moves the target recorded as <paramref name="existing"/>:
    /// another host, port, database, connection options or admin credential. Its stored passwords
    /// then go to the new place, which needs more than changing its schedule does.
    /// </summary>
    public static bool Moves(TargetRecord existing, TargetSpec spec) =>
        !string.Equals(existing.Host, spec.Host.Trim(), StringComparison.Ordinal)
        || existing.Port != spec.Port
        || !string.Equals(existing.Database, spec.Database ?? "", StringComparison.Ordinal)
        || !string.Equals(existing.AdminSecret, spec.AdminSecret, StringComparison.Ordinal)
        || existing.ManagesAdminSecret != spec.ManagesAdminSecret
        || !string.Equals(existing.CaCertificates, spec.CaCertificates ?? "", StringComparison.Ordinal)
        || !string.Equals(existing.CertificatePin, spec.CertificatePin ?? "", StringComparison.Ordinal)
        || existing.Options.Count != spec.Options.Count
        || existing.Options.Any(o => !spec.Options.TryGetValue(o.Key, out var v) || v != o.Value);

    /// <summary>Registers or updates a target: every field is checked (<see cref="TargetSpecValidator"/>) before anything is written.</summary>
    /// <param name="verify">Check on the system that the admin credential logs in and the account(s) exist before storing anything.</param>
    /// <exception cref="ValidationException">A field is invalid (including, when verifying, an admin credential the system refuses or an account it does not have); nothing is written.</exception>
    /// <exception cref="PreconditionException">The target is mid-rotation, or (when verifying) its system cannot be reached.</exception>
    public async Task<TargetRecord> PutAsync(TargetSpec spec, bool rotateNow, string? currentPassword, string? secondCurrentPassword, bool verify, CancellationToken cancellationToken)
    {
        var target = await validator.ValidateAsync(spec, currentPassword, secondCurrentPassword, verify, cancellationToken);
        if (spec.ManagesAdminSecret && string.IsNullOrEmpty(currentPassword))
        {
            // The account is the admin: the password it has today is the admin secret's.
            currentPassword = target.Admin.Password;
        }
        var name = target.Name;
        var result = await repository.WriteAsync(tx =>
        {
            var now = clock.GetUtcNow();
            var existing = repository.Load(tx, name);
            TargetSpecValidator.CheckAgainstStored(existing, target, rotateNow, currentPassword);
            var record = existing ?? new TargetRecord
            {
                Generation = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)),
                CreatedAtUnixMs = now.ToUnixTimeMilliseconds(),
                Accounts = [.. target.Accounts],
                Passwords = [.. target.Accounts.Select(_ => (StoredPassword?)null)],
            };
            Configure(record, target);
            if (ReplacePasswords(name, record, existing, spec.ManagesAdminSecret, currentPassword, secondCurrentPassword))
            {
                record.Drifted = false;
                record.DriftedAtUnixMs = null;
                record.NeedsAttention = false;
                TargetRepository.AppendEvent(tx, name, record, now, now, RotationTriggers.Admin, RotationOutcomes.PasswordReplaced, "", "the password the vault holds was replaced by an admin", target.Accounts[record.ActiveIndex]);
            }
            record.DueTrigger = rotateNow ? RotationTriggers.Registration : null;
            record.NextDueAtUnixMs = rotateNow
                ? now.ToUnixTimeMilliseconds()
                : target.Schedule.NextDue(name, record.LastRotatedAtUnixMs is { } last ? DateTimeOffset.FromUnixTimeMilliseconds(last) : now)?.ToUnixTimeMilliseconds();
            record.NextDriftCheckAtUnixMs ??= now.ToUnixTimeMilliseconds();
            repository.Save(tx, name, record);
            return record;
        }, cancellationToken);
        repository.NotifyCredentialChanged(name);
        return result;
    }

    /// <summary>Copies the checked configuration onto the record (new or stored); its passwords, history and rotation state are left as they are.</summary>
    private static void Configure(TargetRecord record, ValidatedTarget target)
    {
        var spec = target.Spec;
        record.Kind = target.Rotator.Kind;
        record.Host = spec.Host.Trim();
        record.Port = spec.Port;
        record.Database = spec.Database ?? "";
        record.Options = new Dictionary<string, string>(spec.Options, StringComparer.Ordinal);
        record.CaCertificates = spec.CaCertificates ?? "";
        record.CertificatePin = spec.CertificatePin ?? "";
        // From now on a missing TLS option is the rotator's verified default, not the old mode.
        record.VerifiedTlsByDefault = true;
        record.AdminSecret = spec.AdminSecret;
        record.ManagesAdminSecret = spec.ManagesAdminSecret;
        record.PasswordLength = target.Policy.Length;
        record.PasswordAlphabet = target.Policy.Alphabet;
        record.RequireLower = target.Policy.RequireLower;
        record.RequireUpper = target.Policy.RequireUpper;
        record.RequireDigit = target.Policy.RequireDigit;
        record.RequireSymbol = target.Policy.RequireSymbol;
        var schedule = target.Schedule;
        record.IntervalSeconds = schedule.Interval is { } i ? (long)i.TotalSeconds : null;
        record.Cron = schedule.Cron;
        record.WindowStart = schedule.WindowStart is { } ws ? RotationSchedule.FormatTime(ws) : null;
        record.WindowEnd = schedule.WindowEnd is { } we ? RotationSchedule.FormatTime(we) : null;
        record.MaxJitterSeconds = (long)schedule.MaxJitter.TotalSeconds;
    }

    /// <summary>
    /// Stores the passwords the admin gave. A stored managed admin's password is kept: the
    /// default (the admin secret's) must not overwrite the one the last rotation set.
    /// </summary>
    /// <returns>Whether a stored target's password was replaced (the history then says so).</returns>
    private bool ReplacePasswords(string name, TargetRecord record, TargetRecord? existing, bool managesAdminSecret, string? currentPassword, string? secondCurrentPassword)
    {
        var replaced = false;
        if (!string.IsNullOrEmpty(currentPassword) && (existing is null || !managesAdminSecret || existing.Passwords[0] is null))
        {
            record.Passwords[0] = repository.EncryptPassword(name, record, currentPassword);
            replaced = existing is not null;
        }
        if (!string.IsNullOrEmpty(secondCurrentPassword))
        {
            record.Passwords[1] = repository.EncryptPassword(name, record, secondCurrentPassword);
            replaced = replaced || existing is not null;
        }
        return replaced;
    }

    /// <summary>The target (show, and the checks of other areas); its seal is verified.</summary>
    /// <exception cref="NotFoundException">No such target.</exception>
    public TargetRecord Get(string name) => repository.Get(name);

    /// <summary>Every target, by name; records failing their seal are left out (and reported by <see cref="Get"/>).</summary>
    public IReadOnlyList<(string Name, TargetRecord Record)> List() => repository.List();

    /// <summary>The target, or null; its seal is verified.</summary>
    public TargetRecord? TryGet(string name) => repository.TryGet(name);

    /// <summary>Deletes the target and its history.</summary>
    /// <exception cref="PreconditionException">A pending password awaits reconciliation and <paramref name="force"/> is false: it may be the one the system holds, and would be lost.</exception>
    public async Task DeleteAsync(string name, bool force, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(name);
        await repository.WriteAsync(tx =>
        {
            var record = TargetRepository.LoadUnverified(tx, name) ?? throw new NotFoundException($"no target named '{name}'");
            if (record.Pending is not null && !force)
            {
                throw new PreconditionException($"target '{name}' has a pending password that may be the one its system holds; rotate it once the system answers, or delete with force");
            }
            TargetRepository.Delete(tx, name);
            return true;
        }, cancellationToken);
    }

    /// <summary>Pauses or resumes the target's scheduled rotations (a manual one of a paused target is refused by the engine); the scheduler re-plans.</summary>
    public async Task<TargetRecord> SetPausedAsync(string name, bool paused, CancellationToken cancellationToken)
    {
        PolicyStore.ValidateName(name);
        return await repository.WriteAsync(tx =>
        {
            var record = repository.Load(tx, name) ?? throw new NotFoundException($"no target named '{name}'");
            record.Paused = paused;
            repository.Save(tx, name, record);
            return record;
        }, cancellationToken);
    }

    /// <summary>The target's rotations and admin changes, newest first.</summary>
    /// <exception cref="NotFoundException">No such target.</exception>
    public IReadOnlyList<RotationEventRecord> History(string name, int limit)
    {
        Get(name);
        return repository.History(name, limit);
    }

    /// <summary>The account and password applications should use now, with when it changed and will next change.</summary>
    /// <exception cref="PreconditionException">The vault does not yet hold a password for the current account.</exception>
    public TargetCredentialValue Credential(string name)
    {
        var record = Get(name);
        var stored = record.Passwords[record.ActiveIndex]
            ?? throw new PreconditionException($"target '{name}' has no password yet: its first rotation has not completed");
        return new TargetCredentialValue(record.Accounts[record.ActiveIndex], repository.DecryptPassword(name, record, stored), record.Version,
            record.LastRotatedAtUnixMs is { } at ? DateTimeOffset.FromUnixTimeMilliseconds(at) : null,
            record.Paused || record.NextDueAtUnixMs is null ? null : DateTimeOffset.FromUnixTimeMilliseconds(record.NextDueAtUnixMs.Value));
    }

    /// <summary>The schedule a record describes (already validated when it was stored).</summary>
    public static RotationSchedule Schedule(TargetRecord record) => RotationSchedule.FromStored(
        record.IntervalSeconds is { } s ? TimeSpan.FromSeconds(s) : null, record.Cron, record.WindowStart, record.WindowEnd, TimeSpan.FromSeconds(record.MaxJitterSeconds));

    /// <summary>The password policy a record describes (already validated when it was stored), for generating its next password.</summary>
    public static PasswordPolicy Policy(TargetRecord record) =>
        new(record.PasswordLength, record.PasswordAlphabet, record.RequireLower, record.RequireUpper, record.RequireDigit, record.RequireSymbol);

    /// <summary>How to reach the record's system, with the timeouts of <paramref name="options"/>: every statement is bounded on the server, so an interrupted rotation can wait it out.</summary>
    public TargetConnection Connection(TargetRecord record, RotationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(record);
        return trust.ForRecord(record) with
        {
            ConnectTimeout = options.ConnectTimeout,
            StatementTimeout = options.StatementTimeout,
        };
    }

    /// <summary>The admin credential: fields <c>username</c> and <c>password</c> of the KV secret at <paramref name="path"/>, read afresh for each use.</summary>
    /// <exception cref="ValidationException">Missing secret or fields (named by <paramref name="field"/>).</exception>
    public Credential ReadAdminSecret(string? path, string field) => adminCredentials.Read(path, field);
}
