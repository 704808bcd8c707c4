namespace Vault.Client.Leases;

/// <summary>A database (or directory) user name and its password, as the vault handed them out.</summary>
/// <param name="Username">The user name to log in with.</param>
/// <param name="Password">The password; never logged, and hidden by <see cref="ToString"/>.</param>
public sealed record VaultCredential(string Username, string Password)
{
    /// <summary>The user name with the password masked, safe for logs and exception messages.</summary>
    /// <returns><c>VaultCredential { Username = name, Password = *** }</c>.</returns>
    public override string ToString() => $"VaultCredential {{ Username = {Username}, Password = *** }}";
}
