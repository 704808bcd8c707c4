namespace Vault.Client.Leases;

/// <summary>Why a <see cref="VaultLease"/> stopped renewing itself, and when it ends.</summary>
/// <param name="error">The last error from the server.</param>
/// <param name="expiresAt">When the lease ends (already past, or now, when the server no longer knows it).</param>
public sealed class VaultLeaseRenewalFailedEventArgs(Exception error, DateTimeOffset expiresAt) : EventArgs
{
    /// <summary>The last error from the server, usually a <see cref="Grpc.Core.RpcException"/>.</summary>
    public Exception Error { get; } = error;

    /// <summary>When the lease ends; the credential should not be used past it.</summary>
    public DateTimeOffset ExpiresAt { get; } = expiresAt;
}
