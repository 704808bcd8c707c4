using System.Security.Cryptography;
using Vault.Rotators;
using Vault.Rotators.Passwords;
using Vault.Server.Auth;
using Vault.Server.Secrets;

namespace Vault.Server.Rotation;

/// <summary>
/// Rotation targets as records: registration with every field checked before anything is
/// written, reads that verify each record's seal, pause / resume, history and the current
/// credential. The rotation itself is <see cref="RotationEngine"/>'s.
/// </summary>
public sealed class TargetManager(TargetRepository repository, KvEngine kv, RotatorRegistry rotators, TimeProvider clock, Microsoft.Extensions.Options.IOptions<RotationOptions> options)
{
    private const int MaxPasswordLength = 1024;

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
        || existing.Options.Count != spec.Options.Count
        || existing.Options.Any(o => !spec.Options.TryGetValue(o.Key, out var v) || v != o.Value);

    /// <summary>Registers or updates a target.</summary>
    /// <param name="verify">Check on the system that the admin credential logs in and the account(s) exist before storing anything.</param>
    /// <exception cref="ValidationException">A field is invalid (including, when verifying, an admin credential the system refuses or an account it does not have); nothing is written.</exception>
    /// <exception cref="PreconditionException">The target is mid-rotation, or (when verifying) its system cannot be reached.</exception>
    public async Task<TargetRecord> PutAsync(TargetSpec spec, bool rotateNow, string? currentPassword, string? secondCurrentPassword, bool verify, CancellationToken cancellationToken)
    {
        var name = PolicyStore.ValidateName(spec.Name, "target.name");
        if (!rotators.TryGet(spec.Kind ?? "", out var rotator))
        {
            throw new ValidationException("target.kind", string.IsNullOrEmpty(spec.Kind)
                ? $"is required (one of: {string.Join(", ", rotators.Kinds)})"
                : $"unknown kind '{Printable(spec.Kind)}' (one of: {string.Join(", ", rotators.Kinds)})");
        }
        if (string.IsNullOrWhiteSpace(spec.Host))
        {
            throw new ValidationException("target.connection.host", "is required");
        }
        foreach (var option in spec.Options)
        {
            if (option.Key.Length is 0 or > 64 || !option.Key.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
            {
                throw new ValidationException("target.connection.options", "option names are 1 to 64 letters, digits, '_', '-' or '.'");
            }
            if (option.Value.Length > 1024)
            {
                throw new ValidationException($"target.connection.options.{option.Key}", "is longer than 1024 characters");
            }
        }
        var accounts = new List<string> { CheckAccount(spec.Account, "target.account") };
        if (spec.AlternatingUsers)
        {
            accounts.Add(CheckAccount(spec.SecondAccount, "target.second_account"));
            if (accounts[0] == accounts[1])
            {
                throw new ValidationException("target.second_account", "must differ from account");
            }
        }
        else if (!string.IsNullOrEmpty(spec.SecondAccount))
        {
            throw new ValidationException("target.second_account", "is only used with the alternating-users strategy");
        }
        var connection = Connection(spec.Host, spec.Port, spec.Database, spec.Options);
        foreach (var account in accounts)
        {
            if (rotator.Validate(connection, account) is { } problem)
            {
                throw new ValidationException(problem.Field is "account" ? (account == accounts[0] ? "target.account" : "target.second_account") : $"target.connection.{problem.Field}", problem.Reason);
            }
        }
        var admin = ReadAdminSecret(spec.AdminSecret, "target.admin_secret");
        if (spec.ManagesAdminSecret)
        {
            if (spec.AlternatingUsers)
            {
                throw new ValidationException("target.manages_admin_secret", "cannot be combined with alternating users");
            }
            if (!string.Equals(admin.Username, accounts[0], StringComparison.Ordinal))
            {
                throw new ValidationException("target.manages_admin_secret", "the admin secret's username must be this target's account");
            }
            if (repository.List().FirstOrDefault(t => t.Record.ManagesAdminSecret && t.Record.AdminSecret == spec.AdminSecret && t.Name != name) is { Name: { } other })
            {
                throw new ValidationException("target.manages_admin_secret", $"'{spec.AdminSecret}' is already managed by target '{other}'");
            }
        }
        else if (accounts.Contains(admin.Username, StringComparer.Ordinal))
        {
            // Rotating the admin's own password without updating the admin secret would lock out
            // every target that uses it (and this one's rollback).
            throw new ValidationException("target.account", "is the admin secret's own user: set manages_admin_secret so each rotation also updates the secret");
        }
        var policy = spec.PasswordPolicy ?? PasswordPolicy.Default;
        if (policy.Validate() is { } weak)
        {
            throw new ValidationException($"target.password_policy.{weak.Field}", weak.Reason);
        }
        var schedule = RotationSchedule.Create(spec.Interval, spec.Cron, spec.WindowStart, spec.WindowEnd, spec.MaxJitter);
        CheckPassword(currentPassword, "current_password");
        CheckPassword(secondCurrentPassword, "second_current_password");
        if (!spec.AlternatingUsers && !string.IsNullOrEmpty(secondCurrentPassword))
        {
            throw new ValidationException("second_current_password", "is only used with the alternating-users strategy");
        }
        if (spec.ManagesAdminSecret && string.IsNullOrEmpty(currentPassword))
        {
            currentPassword = admin.Password;
        }
        if (verify)
        {
            // Last, after every local check: it is the only one that talks to the system.
            for (var i = 0; i < accounts.Count; i++)
            {
                await VerifyAsync(rotator, connection with { ConnectTimeout = options.Value.ConnectTimeout, StatementTimeout = options.Value.StatementTimeout },
                    admin, accounts[i], i == 0 ? "target.account" : "target.second_account", cancellationToken);
            }
        }

        var result = await repository.WriteAsync(tx =>
        {
            var now = clock.GetUtcNow();
            var existing = repository.Load(tx, name);
            if (existing is null && !rotateNow && string.IsNullOrEmpty(currentPassword))
            {
                throw new ValidationException("current_password", "is required for a new target unless it rotates now (the vault must know the password applications use today)");
            }
            if (existing is not null)
            {
                if (existing.Kind != rotator.Kind)
                {
                    throw new ValidationException("target.kind", $"cannot change from '{existing.Kind}'; delete the target and register it again");
                }
                if (!existing.Accounts.SequenceEqual(accounts, StringComparer.Ordinal))
                {
                    throw new ValidationException("target.account", "accounts and strategy cannot change; delete the target and register it again");
                }
                if (existing.Pending is not null)
                {
                    throw new PreconditionException($"target '{name}' is mid-rotation; try again when it is done");
                }
            }
            var record = existing ?? new TargetRecord
            {
                Generation = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)),
                CreatedAtUnixMs = now.ToUnixTimeMilliseconds(),
                Accounts = accounts,
                Passwords = [.. accounts.Select(_ => (StoredPassword?)null)],
            };
            record.Kind = rotator.Kind;
            record.Host = spec.Host.Trim();
            record.Port = spec.Port;
            record.Database = spec.Database ?? "";
            record.Options = new Dictionary<string, string>(spec.Options, StringComparer.Ordinal);
            record.AdminSecret = spec.AdminSecret;
            record.ManagesAdminSecret = spec.ManagesAdminSecret;
            record.PasswordLength = policy.Length;
            record.PasswordAlphabet = policy.Alphabet;
            record.RequireLower = policy.RequireLower;
            record.RequireUpper = policy.RequireUpper;
            record.RequireDigit = policy.RequireDigit;
            record.RequireSymbol = policy.RequireSymbol;
            record.IntervalSeconds = schedule.Interval is { } i ? (long)i.TotalSeconds : null;
            record.Cron = schedule.Cron;
            record.WindowStart = schedule.WindowStart is { } ws ? RotationSchedule.FormatTime(ws) : null;
            record.WindowEnd = schedule.WindowEnd is { } we ? RotationSchedule.FormatTime(we) : null;
            record.MaxJitterSeconds = (long)schedule.MaxJitter.TotalSeconds;
            var replaced = false;
            if (!string.IsNullOrEmpty(currentPassword) && (existing is null || !spec.ManagesAdminSecret || existing.Passwords[0] is null))
            {
                record.Passwords[0] = repository.EncryptPassword(name, record, currentPassword);
                replaced = existing is not null;
            }
            if (!string.IsNullOrEmpty(secondCurrentPassword))
            {
                record.Passwords[1] = repository.EncryptPassword(name, record, secondCurrentPassword);
                replaced = replaced || existing is not null;
            }
            if (replaced)
            {
                record.Drifted = false;
                record.DriftedAtUnixMs = null;
                record.NeedsAttention = false;
                TargetRepository.AppendEvent(tx, name, record, now, now, RotationTriggers.Admin, RotationOutcomes.PasswordReplaced, "", "the password the vault holds was replaced by an admin", accounts[record.ActiveIndex]);
            }
            record.DueTrigger = rotateNow ? RotationTriggers.Registration : null;
            record.NextDueAtUnixMs = rotateNow
                ? now.ToUnixTimeMilliseconds()
                : schedule.NextDue(name, record.LastRotatedAtUnixMs is { } last ? DateTimeOffset.FromUnixTimeMilliseconds(last) : now)?.ToUnixTimeMilliseconds();
            record.NextDriftCheckAtUnixMs ??= now.ToUnixTimeMilliseconds();
            repository.Save(tx, name, record);
            return record;
        }, cancellationToken);
        repository.NotifyCredentialChanged(name);
        return result;
    }

    /// <summary>Asks the system whether the admin credential logs in and the account exists; the answer names which failed.</summary>
    private static async Task VerifyAsync(ICredentialRotator rotator, TargetConnection connection, Credential admin, string account, string accountField, CancellationToken cancellationToken)
    {
        try
        {
            await rotator.CheckAccountAsync(connection, admin, account, cancellationToken);
        }
        catch (RotatorException ex)
        {
            // Rotator messages name the system and the step, never a password.
            throw ex.Failure switch
            {
                RotatorFailure.AdminRefused => new ValidationException("target.admin_secret", $"the admin credential does not work on the system: {ex.Message}"),
                RotatorFailure.AccountNotFound => new ValidationException(accountField, $"no such account on the system: {ex.Message}"),
                _ => new PreconditionException(
                    $"target.connection: cannot verify the target on its system ({ex.Message}); fix the connection, or set skip_verification (vaultctl target add --skip-verify) to register it while the system is down"),
            };
        }
    }

    /// <summary>The target (show, and the checks of other areas); its seal is verified.</summary>
    /// <exception cref="NotFoundException">No such target.</exception>
    public TargetRecord Get(string name) => repository.Get(name);

    /// <summary>Every target, by name; records failing their seal are left out (and reported by <see cref="Get"/>).</summary>
    public IReadOnlyList<(string Name, TargetRecord Record)> List() => repository.List();

    /// <summary>The target, or null; its seal is verified.</summary>
    public TargetRecord? TryGet(string name) => repository.TryGet(name);

    /// <exception cref="PreconditionException">A pending password awaits reconciliation and <paramref name="force"/> is false.</exception>
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

    /// <summary>Newest first.</summary>
    public IReadOnlyList<RotationEventRecord> History(string name, int limit)
    {
        Get(name);
        return repository.History(name, limit);
    }

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

    public static PasswordPolicy Policy(TargetRecord record) =>
        new(record.PasswordLength, record.PasswordAlphabet, record.RequireLower, record.RequireUpper, record.RequireDigit, record.RequireSymbol);

    public TargetConnection Connection(TargetRecord record, RotationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Connection(record.Host, record.Port, record.Database, record.Options) with
        {
            ConnectTimeout = options.ConnectTimeout,
            StatementTimeout = options.StatementTimeout,
        };
    }

    /// <summary>The admin credential: fields <c>username</c> and <c>password</c> of the KV secret at <paramref name="path"/>.</summary>
    /// <exception cref="ValidationException">Missing secret or fields (named by <paramref name="field"/>).</exception>
    public Credential ReadAdminSecret(string? path, string field)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw new ValidationException(field, "is required: the KV path of the admin credential (fields 'username' and 'password')");
        }
        try
        {
            SecretValidation.Path(path);
        }
        catch (ValidationException ex)
        {
            throw new ValidationException(field, ex.Message);
        }
        SecretValue secret;
        try
        {
            secret = kv.Get(path, 0);
        }
        catch (NotFoundException)
        {
            throw new ValidationException(field, $"no KV secret at '{path}'");
        }
        if (!secret.Data.TryGetValue("username", out var username) || string.IsNullOrEmpty(username))
        {
            throw new ValidationException(field, $"the secret at '{path}' has no 'username' field");
        }
        if (!secret.Data.TryGetValue("password", out var password) || string.IsNullOrEmpty(password))
        {
            throw new ValidationException(field, $"the secret at '{path}' has no 'password' field");
        }
        return new Credential(username, password);
    }

    private static TargetConnection Connection(string host, int port, string? database, IReadOnlyDictionary<string, string> options) =>
        new(host.Trim(), port, database ?? "", new Dictionary<string, string>(options, StringComparer.Ordinal));

    private static string CheckAccount(string? account, string field)
    {
        if (string.IsNullOrWhiteSpace(account))
        {
            throw new ValidationException(field, "is required");
        }
        if (account.Length > 512 || account.Any(char.IsControl))
        {
            throw new ValidationException(field, "must be at most 512 characters without control characters");
        }
        return account;
    }

    private static void CheckPassword(string? password, string field)
    {
        if (password is { Length: > MaxPasswordLength })
        {
            throw new ValidationException(field, $"is longer than {MaxPasswordLength} characters");
        }
        if (password is not null && password.Any(char.IsControl))
        {
            throw new ValidationException(field, "must not contain control characters");
        }
    }

    private static string Printable(string value) =>
        value.Length <= 32 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') ? value : "(invalid)";
}
