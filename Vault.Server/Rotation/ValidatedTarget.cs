using Vault.Rotators;
using Vault.Rotators.Passwords;

namespace Vault.Server.Rotation;

/// <summary>
/// A <see cref="TargetSpec"/> every field of which <see cref="TargetSpecValidator"/> checked, with
/// what the checks resolved (the rotator, the accounts, the admin credential, the policy and the
/// schedule), so that writing the target does not look any of them up or parse them again.
/// </summary>
/// <param name="Spec">The specification as given.</param>
/// <param name="Name">The checked name.</param>
/// <param name="Rotator">The rotator of the spec's kind.</param>
/// <param name="Accounts">The account, and for alternating users the second account.</param>
/// <param name="Admin">The admin credential read from the spec's admin secret (its <c>ToString</c> never prints the password).</param>
/// <param name="Policy">The password policy, the default when none was given.</param>
/// <param name="Schedule">The schedule.</param>
public sealed record ValidatedTarget(
    TargetSpec Spec,
    string Name,
    ICredentialRotator Rotator,
    IReadOnlyList<string> Accounts,
    Credential Admin,
    PasswordPolicy Policy,
    RotationSchedule Schedule);
