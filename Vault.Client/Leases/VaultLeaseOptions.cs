namespace Vault.Client.Leases;

/// <summary>How a <see cref="VaultLease"/> renews itself in the background and what it does on dispose.</summary>
public sealed class VaultLeaseOptions
{
    /// <summary>
    /// How far each renewal extends the lease, counted from the renewal. Null: the TTL the lease was
    /// issued with. The server caps every renewal at the lease's max TTL.
    /// </summary>
    public TimeSpan? Increment { get; set; }

    /// <summary>
    /// When to renew, as the fraction of the time left that has passed: 2/3 (the default) renews a
    /// lease with 30 s left after 20 s, leaving 10 s for retries.
    /// </summary>
    public double RenewAt { get; set; } = 2.0 / 3.0;

    /// <summary>The first wait after a failed renewal (the server unreachable or sealed); it doubles up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The longest wait between two renewal attempts. Retries never go past the lease's end.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Revoke the lease on <see cref="VaultLease.DisposeAsync"/> (the default). False leaves it to end at its expiry.</summary>
    public bool RevokeOnDispose { get; set; } = true;

    /// <summary>How long <see cref="VaultLease.DisposeAsync"/> waits for the revocation before giving up (the lease then ends at its expiry).</summary>
    public TimeSpan RevokeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The clock renewals are planned and waited on (the system clock by default; a fake one in
    /// tests). Call deadlines stay on the system clock: the server enforces them.
    /// </summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    internal void Validate()
    {
        if (!(RenewAt is > 0 and < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(RenewAt), RenewAt, "must be between 0 and 1 (exclusive)");
        }
        if (RetryDelay <= TimeSpan.Zero || MaxRetryDelay < RetryDelay)
        {
            throw new ArgumentOutOfRangeException(nameof(RetryDelay), RetryDelay, "must be positive and at most MaxRetryDelay");
        }
        if (Increment is { } increment && increment < TimeSpan.FromSeconds(1))
        {
            throw new ArgumentOutOfRangeException(nameof(Increment), increment, "must be at least 1 s (the server's minimum)");
        }
    }
}
