using System.Security.Cryptography;

namespace Vault.Rotators.Passwords;

/// <summary>Generates passwords from a <see cref="PasswordPolicy"/>.</summary>
/// <remarks>
/// Each character is drawn with <see cref="RandomNumberGenerator.GetInt32(int)"/>, which is
/// unbiased (it rejects rather than reducing modulo). Required classes are met by drawing whole
/// passwords again until one has them all, so the result is uniform over the passwords the policy
/// allows; placing one character of each class and shuffling would favour those classes.
/// </remarks>
public static class PasswordGenerator
{
    private const int MaxAttempts = 100_000;

    /// <exception cref="ArgumentException">The policy is invalid (see <see cref="PasswordPolicy.Validate"/>).</exception>
    public static string Generate(PasswordPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (policy.Validate() is { } problem)
        {
            throw new ArgumentException($"password policy {problem.Field} {problem.Reason}", nameof(policy));
        }
        var alphabet = policy.DistinctAlphabet;
        var buffer = new char[policy.Length];
        for (var attempt = 0; attempt < MaxAttempts; attempt++)
        {
            for (var i = 0; i < buffer.Length; i++)
            {
                buffer[i] = alphabet[RandomNumberGenerator.GetInt32(alphabet.Length)];
            }
            var candidate = new string(buffer);
            if (policy.IsSatisfiedBy(candidate))
            {
                Array.Clear(buffer);
                return candidate;
            }
        }
        Array.Clear(buffer);
        // Validate() bounds the entropy and the classes, so this needs a policy far outside what it accepts.
        throw new InvalidOperationException("could not generate a password meeting the policy's required classes");
    }
}
