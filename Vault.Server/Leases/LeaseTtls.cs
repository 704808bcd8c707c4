namespace Vault.Server.Leases;

/// <summary>
/// The lifetimes every kind of lease shares: what a role or a set gets when it names none, the
/// longest a role or set may allow, and the checks on what an admin asks for.
/// </summary>
public static class LeaseTtls
{
    /// <summary>A lease's lifetime when neither the caller nor its role or set names one; also a renewal's step when the role or set is gone.</summary>
    public static readonly TimeSpan DefaultTtl = TimeSpan.FromHours(1);

    /// <summary>A role's or set's max TTL when it names none, and the max of a static lease (which has no role to name one).</summary>
    public static readonly TimeSpan DefaultMaxTtl = TimeSpan.FromHours(24);

    /// <summary>The longest max TTL a role or set may have: a lease is meant to end.</summary>
    public static readonly TimeSpan MaxTtlLimit = TimeSpan.FromDays(366);

    /// <summary>
    /// Checks a role's or set's TTLs (<paramref name="field"/>: "role" or "set", for the error)
    /// and fills in the defaults, so that roles and sets refuse the same things the same way.
    /// </summary>
    /// <exception cref="ValidationException">A TTL is out of range, or the default is over the max.</exception>
    public static (TimeSpan Ttl, TimeSpan Max) Validate(TimeSpan? defaultTtl, TimeSpan? maxTtl, string field)
    {
        var max = maxTtl ?? DefaultMaxTtl;
        if (max < TimeSpan.FromSeconds(1) || max > MaxTtlLimit)
        {
            throw new ValidationException($"{field}.max_ttl", $"must be between 1 s and {MaxTtlLimit.TotalDays:F0} days");
        }
        var ttl = defaultTtl ?? (DefaultTtl < max ? DefaultTtl : max);
        if (ttl < TimeSpan.FromSeconds(1) || ttl > max)
        {
            throw new ValidationException($"{field}.default_ttl", "must be at least 1 s and at most max_ttl");
        }
        return (ttl, max);
    }
}
