using Microsoft.Extensions.Options;
using Vault.Rotators;
using Vault.Rotators.Passwords;
using Vault.Server.Auth;

namespace Vault.Server.Rotation;

/// <summary>
/// Every check of a target registration, in one place and in a fixed order, so that a bad field is
/// refused with its name (<c>target.connection.port</c>, <c>current_password</c>, …) before anything
/// is written. Checks that need nothing outside the request come first; the rotator's own checks of
/// the connection and accounts (the one place a host or port is checked) next; then the stored admin
/// secret; and last, only when asked, a check on the target's system, the one that talks to it.
/// </summary>
public sealed class TargetSpecValidator(TargetRepository repository, AdminCredentialReader adminCredentials, RotatorRegistry rotators, TargetTrust trust, TimeProvider clock, IOptions<RotationOptions> options)
{
    private const int MaxPasswordLength = 1024;
    private const int MaxCaCertificatesLength = 64 * 1024;

    /// <summary>Checks <paramref name="spec"/> and the passwords given with it, before the write.</summary>
    /// <param name="verify">Check on the system that the admin credential logs in and the account(s) exist.</param>
    /// <exception cref="ValidationException">A field is invalid (including, when verifying, an admin credential the system refuses or an account it does not have).</exception>
    /// <exception cref="PreconditionException">When verifying, the system cannot be reached.</exception>
    public async Task<ValidatedTarget> ValidateAsync(TargetSpec spec, string? currentPassword, string? secondCurrentPassword, bool verify, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
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
        CheckOptions(spec.Options);
        if ((spec.CaCertificates ?? "").Length > MaxCaCertificatesLength)
        {
            throw new ValidationException("target.connection.ca_certificates", $"is longer than {MaxCaCertificatesLength} characters");
        }
        var accounts = Accounts(spec);
        var connection = spec.Connection();
        foreach (var account in accounts)
        {
            if (rotator.Validate(connection, account) is { } problem)
            {
                throw new ValidationException(problem.Field is "account" ? (account == accounts[0] ? "target.account" : "target.second_account") : $"target.connection.{problem.Field}", problem.Reason);
            }
        }
        if ((connection.CaCertificates.Length > 0 || connection.CertificatePin.Length > 0) && !rotator.Transport(connection).ChecksCertificate)
        {
            throw new ValidationException(connection.CaCertificates.Length > 0 ? "target.connection.ca_certificates" : "target.connection.certificate_pin",
                $"is only used when the system's certificate is checked, which mode '{rotator.Transport(connection).Mode}' does not (use {(rotator.Kind == "ldap" ? "tls starttls or ldaps" : "ssl_mode verify-full or verify-ca")})");
        }
        var admin = adminCredentials.Read(spec.AdminSecret, "target.admin_secret");
        CheckAdmin(spec, name, accounts, admin);
        var policy = spec.PasswordPolicy ?? PasswordPolicy.Default;
        if (policy.Validate() is { } weak)
        {
            throw new ValidationException($"target.password_policy.{weak.Field}", weak.Reason);
        }
        var schedule = RotationSchedule.Create(clock.GetUtcNow(), spec.Interval, spec.Cron, spec.WindowStart, spec.WindowEnd, spec.MaxJitter);
        CheckPassword(currentPassword, "current_password");
        CheckPassword(secondCurrentPassword, "second_current_password");
        if (!spec.AlternatingUsers && !string.IsNullOrEmpty(secondCurrentPassword))
        {
            throw new ValidationException("second_current_password", "is only used with the alternating-users strategy");
        }
        if (verify)
        {
            // Last, after every local check: it is the only one that talks to the system.
            for (var i = 0; i < accounts.Count; i++)
            {
                await VerifyAsync(rotator, trust.ForSpec(spec) with { ConnectTimeout = options.Value.ConnectTimeout, StatementTimeout = options.Value.StatementTimeout },
                    admin, accounts[i], i == 0 ? "target.account" : "target.second_account", cancellationToken);
            }
        }
        return new ValidatedTarget(spec, name, rotator, accounts, admin, policy, schedule);
    }

    /// <summary>
    /// The checks against what is stored under the target's name, made inside the write so that
    /// they see the record the write replaces: a new target needs the password applications use
    /// today (unless it rotates now), and a stored one keeps its kind and accounts and is not
    /// mid-rotation.
    /// </summary>
    /// <param name="currentPassword">The current password given, or for a managed admin secret the admin's.</param>
    /// <exception cref="ValidationException">The password is missing, or the kind or accounts would change.</exception>
    /// <exception cref="PreconditionException">The target is mid-rotation.</exception>
    public static void CheckAgainstStored(TargetRecord? existing, ValidatedTarget target, bool rotateNow, string? currentPassword)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (existing is null)
        {
            if (!rotateNow && string.IsNullOrEmpty(currentPassword))
            {
                throw new ValidationException("current_password", "is required for a new target unless it rotates now (the vault must know the password applications use today)");
            }
            return;
        }
        if (existing.Kind != target.Rotator.Kind)
        {
            throw new ValidationException("target.kind", $"cannot change from '{existing.Kind}'; delete the target and register it again");
        }
        if (!existing.Accounts.SequenceEqual(target.Accounts, StringComparer.Ordinal))
        {
            throw new ValidationException("target.account", "accounts and strategy cannot change; delete the target and register it again");
        }
        if (existing.Pending is not null)
        {
            throw new PreconditionException($"target '{target.Name}' is mid-rotation; try again when it is done");
        }
    }

    private static void CheckOptions(IReadOnlyDictionary<string, string> connectionOptions)
    {
        foreach (var option in connectionOptions)
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
    }

    /// <summary>The account, and the second one exactly when the strategy alternates between two.</summary>
    private static List<string> Accounts(TargetSpec spec)
    {
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
        return accounts;
    }

    /// <summary>How the accounts may relate to the admin credential: rotating the admin's own password must update its secret too, and only one target may do that.</summary>
    private void CheckAdmin(TargetSpec spec, string name, List<string> accounts, Credential admin)
    {
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

    /// <summary>The kind as given when it is a plausible name, so an error never echoes arbitrary input.</summary>
    private static string Printable(string value) =>
        value.Length <= 32 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') ? value : "(invalid)";
}
