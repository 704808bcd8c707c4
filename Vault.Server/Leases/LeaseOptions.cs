using System.ComponentModel.DataAnnotations;

namespace Vault.Server.Leases;

/// <summary>Lease settings, bound from "Vault:Leases".</summary>
public sealed class LeaseOptions
{
    public const string Section = "Vault:Leases";

    /// <summary>How often the reaper looks for leases to end.</summary>
    public TimeSpan ReaperInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The first retry of a failed revocation waits this long, doubling per failure up to <see cref="RevokeRetryMax"/>.</summary>
    public TimeSpan RevokeRetryBase { get; set; } = TimeSpan.FromSeconds(5);

    public TimeSpan RevokeRetryMax { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>After this many failed revocations a lease is marked irrevocable (and left for an admin).</summary>
    [Range(1, 1000)]
    public int MaxRevokeAttempts { get; set; } = 12;
}
