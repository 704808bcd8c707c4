using Vault.Client.Leases;

namespace Vault.Client.Credentials;

/// <summary>How a <see cref="VaultCredentialProvider"/> keeps its credential fresh.</summary>
public sealed class VaultCredentialProviderOptions
{
    /// <summary>
    /// How long a replaced lease is kept before it is revoked, so that connections opened with its
    /// user can finish their work (revoking drops the user and ends its sessions). Never past the
    /// lease's own end. Default 1 minute.
    /// </summary>
    public TimeSpan Overlap { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// For rotation targets: how long one watch of the target lasts before it is opened again and the
    /// credential compared (a guard against a connection that died silently). Default 5 minutes.
    /// </summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The first wait after a failure to reach the vault; doubles up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between two attempts to reach the vault.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The clock lease replacements are planned and waited on with. Default the system clock; tests
    /// substitute a fake one to step through a lease's life without waiting it out.
    /// </summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>How the leases of dynamic roles and check-out sets renew; null uses the defaults.</summary>
    public VaultLeaseOptions? Lease { get; set; }
}
