using Google.Protobuf.WellKnownTypes;
using Vault.Protocol.V1;

namespace Vault.Client;

public sealed partial class VaultClient
{
    private LeaseService.LeaseServiceClient Leases => new(_invoker);

    /// <summary>Creates or replaces a dynamic role: how to make short-lived database users on a rotation target.</summary>
    /// <param name="role">The role: name, target, creation statements (<c>{{name}}</c> stands for the quoted user name), default and max TTL.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The role as stored (with defaults filled in).</returns>
    /// <remarks>Not an AppRole (<see cref="PutRoleAsync"/>): a dynamic role issues database credentials, not tokens.</remarks>
    /// <exception cref="Grpc.Core.RpcException">
    /// InvalidArgument naming the bad field (an unknown target, a target kind without ephemeral users, a bad
    /// statement or TTL); PermissionDenied without <c>create</c>/<c>update</c> on <c>lease/role/&lt;name&gt;</c>
    /// or <c>read</c> on <c>rotation/target/&lt;target&gt;</c>.
    /// </exception>
    public async Task<DynamicRole> PutDynamicRoleAsync(DynamicRole role, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(role);
        return await Leases.PutDynamicRoleAsync(new PutDynamicRoleRequest { Role = role }, Call(cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Reads a dynamic role.</summary>
    /// <param name="name">The role's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The role.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown role; PermissionDenied without <c>read</c> on <c>lease/role/&lt;name&gt;</c>.</exception>
    public async Task<DynamicRole> GetDynamicRoleAsync(string name, CancellationToken cancellationToken = default) =>
        await Leases.GetDynamicRoleAsync(new GetDynamicRoleRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Lists the names of all dynamic roles.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The role names.</returns>
    /// <exception cref="Grpc.Core.RpcException">PermissionDenied without <c>list</c> on <c>lease/role</c>.</exception>
    public async Task<IReadOnlyList<string>> ListDynamicRolesAsync(CancellationToken cancellationToken = default) =>
        (await Leases.ListDynamicRolesAsync(new ListDynamicRolesRequest(), Call(cancellationToken)).ConfigureAwait(false)).Names;

    /// <summary>Deletes a dynamic role.</summary>
    /// <param name="name">The role's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the role is gone.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown role; FailedPrecondition while the role has live leases.</exception>
    public async Task DeleteDynamicRoleAsync(string name, CancellationToken cancellationToken = default) =>
        await Leases.DeleteDynamicRoleAsync(new DeleteDynamicRoleRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Makes a fresh database user for a dynamic role, under a new lease held by the calling token.</summary>
    /// <param name="role">The dynamic role's name.</param>
    /// <param name="ttl">How long the lease lasts; null for the role's default TTL.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The lease, the user name and the password (shown only here: the vault does not keep it).</returns>
    /// <remarks>
    /// When the lease ends (it expires, it is revoked, or the token that took it is revoked) the user is dropped
    /// and its sessions ended.
    /// </remarks>
    /// <exception cref="Grpc.Core.RpcException">
    /// NotFound for an unknown role; InvalidArgument for a TTL over the role's max TTL; Unavailable when the target
    /// does not answer, FailedPrecondition when it refuses to make the user (a bad creation statement) — the lease
    /// is ended again either way; PermissionDenied without <c>read</c> on <c>lease/creds/&lt;role&gt;</c>.
    /// </exception>
    public async Task<IssuedCredential> IssueCredentialAsync(string role, TimeSpan? ttl = null, CancellationToken cancellationToken = default)
    {
        var request = new IssueCredentialRequest { Role = role };
        if (ttl is { } value)
        {
            request.Ttl = Duration.FromTimeSpan(value);
        }
        return await Leases.IssueCredentialAsync(request, Call(cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Extends a lease, never past its max TTL.</summary>
    /// <param name="leaseId">The lease id (e.g. <c>dynamic/&lt;role&gt;/&lt;random&gt;</c>).</param>
    /// <param name="increment">The new remaining lifetime, counted from now; null for the role's default TTL.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The lease with its new expiry.</returns>
    /// <exception cref="Grpc.Core.RpcException">
    /// NotFound for an unknown lease; PermissionDenied for a token other than the one that took the lease without
    /// <c>update</c> on <c>lease/id/&lt;lease id&gt;</c>.
    /// </exception>
    public async Task<Lease> RenewLeaseAsync(string leaseId, TimeSpan? increment = null, CancellationToken cancellationToken = default)
    {
        var request = new RenewLeaseRequest { LeaseId = leaseId };
        if (increment is { } value)
        {
            request.Increment = Duration.FromTimeSpan(value);
        }
        return await Leases.RenewLeaseAsync(request, Call(cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Ends a lease now: its database user is dropped (a checked-out account is rotated and returned to its set).</summary>
    /// <param name="leaseId">The lease id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>
    /// The lease: <see cref="LeaseState.Revoked"/> once the user is gone, or <see cref="LeaseState.Revoking"/> while the
    /// server retries dropping it in the background (the database did not answer; see <see cref="Lease.LastError"/>).
    /// </returns>
    /// <exception cref="Grpc.Core.RpcException">
    /// NotFound for an unknown lease; PermissionDenied for a token other than the one that took the lease without
    /// <c>delete</c> on <c>lease/id/&lt;lease id&gt;</c>.
    /// </exception>
    public async Task<Lease> RevokeLeaseAsync(string leaseId, CancellationToken cancellationToken = default) =>
        await Leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = leaseId }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Revokes every lease whose id starts with a prefix (e.g. <c>dynamic/&lt;role&gt;/</c>).</summary>
    /// <param name="prefix">The lease id prefix.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many leases were ended.</returns>
    /// <exception cref="Grpc.Core.RpcException">PermissionDenied without <c>delete</c> on <c>lease/id/&lt;prefix&gt;</c> (a rule ending in <c>*</c> grants it).</exception>
    public async Task<uint> RevokeLeasePrefixAsync(string prefix, CancellationToken cancellationToken = default) =>
        (await Leases.RevokeLeasePrefixAsync(new RevokeLeasePrefixRequest { Prefix = prefix }, Call(cancellationToken)).ConfigureAwait(false)).Count;

    /// <summary>Reads a lease: its role, user name, state and expiry (never the password).</summary>
    /// <param name="leaseId">The lease id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The lease.</returns>
    /// <exception cref="Grpc.Core.RpcException">
    /// NotFound for an unknown lease; PermissionDenied for a token other than the one that took the lease without
    /// <c>read</c> on <c>lease/id/&lt;lease id&gt;</c>.
    /// </exception>
    public async Task<Lease> LookupLeaseAsync(string leaseId, CancellationToken cancellationToken = default) =>
        await Leases.LookupLeaseAsync(new LookupLeaseRequest { LeaseId = leaseId }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Lists the leases whose id starts with a prefix.</summary>
    /// <param name="prefix">The lease id prefix; empty for every lease.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The leases.</returns>
    /// <exception cref="Grpc.Core.RpcException">PermissionDenied without <c>list</c> on <c>lease/id/&lt;prefix&gt;</c>.</exception>
    public async Task<IReadOnlyList<Lease>> ListLeasesAsync(string prefix = "", CancellationToken cancellationToken = default) =>
        (await Leases.ListLeasesAsync(new ListLeasesRequest { Prefix = prefix ?? "" }, Call(cancellationToken)).ConfigureAwait(false)).Leases;

    /// <summary>Creates or replaces a check-out set: rotation targets lent, one holder each, under leases.</summary>
    /// <param name="set">The set: name, targets (single-user targets with no schedule), default and max TTL; <see cref="CheckoutSet.Lent"/> is ignored.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The set as stored (with defaults filled in and the targets lent right now).</returns>
    /// <remarks>
    /// Each check-in rotates the account's password, so a target in a set must have no rotation schedule of its own:
    /// a scheduled rotation would change the password under its holder.
    /// </remarks>
    /// <exception cref="Grpc.Core.RpcException">
    /// InvalidArgument naming the bad field (an unknown target, an alternating-users target, one with a schedule or
    /// that is an admin credential, a target listed twice, a bad TTL); PermissionDenied without
    /// <c>create</c>/<c>update</c> on <c>lease/set/&lt;name&gt;</c> or <c>read</c> on <c>rotation/target/&lt;target&gt;</c>
    /// for each target.
    /// </exception>
    public async Task<CheckoutSet> PutCheckoutSetAsync(CheckoutSet set, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(set);
        return await Leases.PutCheckoutSetAsync(new PutCheckoutSetRequest { Set = set }, Call(cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Reads a check-out set, with the targets lent right now.</summary>
    /// <param name="name">The set's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The set; <see cref="CheckoutSet.Lent"/> names its targets that are checked out (or still checking in).</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown set; PermissionDenied without <c>read</c> on <c>lease/set/&lt;name&gt;</c>.</exception>
    public async Task<CheckoutSet> GetCheckoutSetAsync(string name, CancellationToken cancellationToken = default) =>
        await Leases.GetCheckoutSetAsync(new GetCheckoutSetRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Lists the names of all check-out sets.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The set names.</returns>
    /// <exception cref="Grpc.Core.RpcException">PermissionDenied without <c>list</c> on <c>lease/set</c>.</exception>
    public async Task<IReadOnlyList<string>> ListCheckoutSetsAsync(CancellationToken cancellationToken = default) =>
        (await Leases.ListCheckoutSetsAsync(new ListCheckoutSetsRequest(), Call(cancellationToken)).ConfigureAwait(false)).Names;

    /// <summary>Deletes a check-out set; its targets stay as they are.</summary>
    /// <param name="name">The set's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the set is gone.</returns>
    /// <exception cref="Grpc.Core.RpcException">
    /// NotFound for an unknown set; FailedPrecondition while an account of the set is lent; PermissionDenied without
    /// <c>delete</c> on <c>lease/set/&lt;name&gt;</c>.
    /// </exception>
    public async Task DeleteCheckoutSetAsync(string name, CancellationToken cancellationToken = default) =>
        await Leases.DeleteCheckoutSetAsync(new DeleteCheckoutSetRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Borrows a free account of a check-out set, under a new lease held by the calling token.</summary>
    /// <param name="set">The check-out set's name.</param>
    /// <param name="ttl">How long the lease lasts; null for the set's default TTL.</param>
    /// <param name="wait">How long to wait for an account when none is free (at most 10 minutes, served first come first served); null not to wait.</param>
    /// <param name="cancellationToken">Cancels the call (and a wait in progress).</param>
    /// <returns>The lease (id <c>checkout/&lt;set&gt;/&lt;random&gt;</c>), the account's user name and its current password.</returns>
    /// <remarks>
    /// A single call: nothing renews the lease. Check the account in with <see cref="RevokeLeaseAsync"/> on the lease id;
    /// check-in (or expiry, or the revocation of the token that borrowed it) rotates the account's password before it is
    /// lent again, so the borrowed password stops working.
    /// </remarks>
    /// <exception cref="Grpc.Core.RpcException">
    /// ResourceExhausted when no account is free (at once without <paramref name="wait"/>, else when the wait runs out);
    /// NotFound for an unknown set; InvalidArgument for a TTL over the set's max TTL or a wait over 10 minutes;
    /// PermissionDenied without <c>checkout</c> on <c>lease/set/&lt;name&gt;</c>.
    /// </exception>
    public async Task<IssuedCredential> BorrowAccountAsync(string set, TimeSpan? ttl = null, TimeSpan? wait = null, CancellationToken cancellationToken = default)
    {
        var request = new CheckoutAccountRequest { Set = set };
        if (ttl is { } lifetime)
        {
            request.Ttl = Duration.FromTimeSpan(lifetime);
        }
        if (wait is { } patience)
        {
            request.Wait = Duration.FromTimeSpan(patience);
        }
        return await Leases.CheckoutAccountAsync(request, Call(cancellationToken, wait ?? TimeSpan.Zero)).ConfigureAwait(false);
    }
}
