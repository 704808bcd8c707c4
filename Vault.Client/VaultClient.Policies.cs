using Vault.Protocol.V1;

namespace Vault.Client;

public sealed partial class VaultClient
{
    /// <summary>Creates or replaces a policy.</summary>
    /// <param name="policy">The policy's name and rules.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the policy is stored.</returns>
    /// <exception cref="Grpc.Core.RpcException">InvalidArgument for a bad name, glob or capability.</exception>
    public async Task PutPolicyAsync(Policy policy, CancellationToken cancellationToken = default) =>
        await _policies.PutAsync(new PutPolicyRequest { Policy = policy }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Reads a policy.</summary>
    /// <param name="name">The policy's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The policy's rules.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown policy.</exception>
    public async Task<Policy> GetPolicyAsync(string name, CancellationToken cancellationToken = default) =>
        await _policies.GetAsync(new GetPolicyRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Lists the names of all policies.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The policy names.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task<IReadOnlyList<string>> ListPoliciesAsync(CancellationToken cancellationToken = default) =>
        (await _policies.ListAsync(new ListPoliciesRequest(), Call(cancellationToken)).ConfigureAwait(false)).Names;

    /// <summary>Deletes a policy.</summary>
    /// <param name="name">The policy's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the policy is gone.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task DeletePolicyAsync(string name, CancellationToken cancellationToken = default) =>
        await _policies.DeleteAsync(new DeletePolicyRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);
}
