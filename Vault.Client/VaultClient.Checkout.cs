using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Vault.Client.Leases;
using Vault.Protocol.V1;

namespace Vault.Client;

public sealed partial class VaultClient
{
    /// <summary>
    /// Takes a fresh database user from a dynamic role, under a lease that renews itself in the
    /// background until disposed: <c>await using var lease = await client.CheckoutAsync("billing-ro");</c>.
    /// </summary>
    /// <param name="role">The dynamic role's name.</param>
    /// <param name="ttl">The lease's lifetime before each renewal; null uses the role's default TTL. At most the role's max TTL.</param>
    /// <param name="options">Renewal and dispose behaviour; null uses the defaults.</param>
    /// <param name="cancellationToken">Cancels the call (not the lease).</param>
    /// <returns>The lease with the user name and password. Dispose it to drop the user.</returns>
    /// <exception cref="RpcException">
    /// NotFound for an unknown role; InvalidArgument for a TTL over the role's max; PermissionDenied
    /// without <c>read</c> on <c>lease/creds/&lt;role&gt;</c>; Unavailable when the database is unreachable.
    /// </exception>
    public async Task<VaultLease> CheckoutAsync(string role, TimeSpan? ttl = null, VaultLeaseOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(role);
        options ??= new VaultLeaseOptions();
        options.Validate();
        var request = new IssueCredentialRequest { Role = role };
        if (ttl is { } value)
        {
            request.Ttl = Duration.FromTimeSpan(value);
        }
        var holder = await LeaseHolderAsync(ttl, options.TimeProvider, cancellationToken).ConfigureAwait(false);
        var leases = new LeaseService.LeaseServiceClient(_invoker);
        var issued = await leases.IssueCredentialAsync(request, new CallOptions(holder.Headers, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return new VaultLease(leases, holder, issued, options, LoggerFactory.CreateLogger<VaultLease>());
    }

    /// <summary>
    /// Borrows an account of a check-out set, exclusively, under a lease that renews itself in the
    /// background until disposed; disposing checks the account in, and the vault then rotates its
    /// password, so the copy held here stops working.
    /// </summary>
    /// <param name="set">The check-out set's name.</param>
    /// <param name="ttl">The lease's lifetime before each renewal; null uses the set's default TTL. At most the set's max TTL.</param>
    /// <param name="wait">How long the server may wait for a free account, first come first served; null does not wait.</param>
    /// <param name="options">Renewal and dispose behaviour; null uses the defaults.</param>
    /// <param name="cancellationToken">Cancels the call (and the wait), not the lease.</param>
    /// <returns>The lease with the account's user name and current password.</returns>
    /// <exception cref="RpcException">
    /// ResourceExhausted when no account is free (within <paramref name="wait"/>); NotFound for an
    /// unknown set; InvalidArgument for a TTL over the set's max; PermissionDenied without
    /// <c>checkout</c> on <c>lease/set/&lt;set&gt;</c>.
    /// </exception>
    public async Task<VaultLease> CheckoutAccountAsync(string set, TimeSpan? ttl = null, TimeSpan? wait = null, VaultLeaseOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(set);
        options ??= new VaultLeaseOptions();
        options.Validate();
        var request = new CheckoutAccountRequest { Set = set };
        if (ttl is { } value)
        {
            request.Ttl = Duration.FromTimeSpan(value);
        }
        if (wait is { } patience)
        {
            request.Wait = Duration.FromTimeSpan(patience);
        }
        var holder = await LeaseHolderAsync(ttl, options.TimeProvider, cancellationToken).ConfigureAwait(false);
        var leases = new LeaseService.LeaseServiceClient(_invoker);
        var issued = await leases.CheckoutAccountAsync(request, new CallOptions(holder.Headers, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return new VaultLease(leases, holder, issued, options, LoggerFactory.CreateLogger<VaultLease>());
    }
}
