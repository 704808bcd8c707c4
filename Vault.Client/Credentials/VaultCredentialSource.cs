namespace Vault.Client.Credentials;

/// <summary>What kind of vault object a <see cref="VaultCredentialSource"/> takes credentials from.</summary>
public enum VaultCredentialKind
{
    /// <summary>A dynamic role: a fresh database user per lease.</summary>
    DynamicRole,

    /// <summary>A check-out set: an account lent to one holder at a time.</summary>
    CheckoutSet,

    /// <summary>A rotation target: the account (or the current one of two) whose password the vault rotates.</summary>
    RotationTarget,
}

/// <summary>Where a <see cref="VaultCredentialProvider"/> gets its database credential from.</summary>
public sealed class VaultCredentialSource
{
    private VaultCredentialSource(VaultCredentialKind kind, string name, TimeSpan? ttl, TimeSpan? wait)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Kind = kind;
        Name = name;
        Ttl = ttl;
        Wait = wait;
    }

    /// <summary>The kind of source.</summary>
    public VaultCredentialKind Kind { get; }

    /// <summary>The role's, set's or target's name.</summary>
    public string Name { get; }

    /// <summary>The lease TTL asked for (dynamic roles and check-out sets); null takes the server's default.</summary>
    public TimeSpan? Ttl { get; }

    /// <summary>How long a check-out may wait for a free account; null does not wait.</summary>
    public TimeSpan? Wait { get; }

    /// <summary>A fresh database user from a dynamic role, kept under a renewed lease and replaced before the lease's max TTL.</summary>
    /// <param name="role">The dynamic role's name.</param>
    /// <param name="ttl">The lease TTL; null uses the role's default.</param>
    /// <returns>The source.</returns>
    public static VaultCredentialSource DynamicRole(string role, TimeSpan? ttl = null) => new(VaultCredentialKind.DynamicRole, role, ttl, null);

    /// <summary>An account borrowed from a check-out set, kept under a renewed lease and checked in on dispose.</summary>
    /// <param name="set">The check-out set's name.</param>
    /// <param name="ttl">The lease TTL; null uses the set's default.</param>
    /// <param name="wait">How long to wait for a free account; null fails at once when none is free.</param>
    /// <returns>The source.</returns>
    public static VaultCredentialSource CheckoutSet(string set, TimeSpan? ttl = null, TimeSpan? wait = null) => new(VaultCredentialKind.CheckoutSet, set, ttl, wait);

    /// <summary>The current credential of a rotation target, re-read whenever the vault reports a change.</summary>
    /// <param name="target">The target's name.</param>
    /// <returns>The source.</returns>
    public static VaultCredentialSource RotationTarget(string target) => new(VaultCredentialKind.RotationTarget, target, null, null);

    /// <summary>The source for logs, e.g. <c>dynamic role billing-ro</c>.</summary>
    /// <returns>The kind and name.</returns>
    public override string ToString() => Kind switch
    {
        VaultCredentialKind.DynamicRole => $"dynamic role {Name}",
        VaultCredentialKind.CheckoutSet => $"check-out set {Name}",
        _ => $"rotation target {Name}",
    };
}
