using Vault.Protocol.V1;

namespace Vault.Client;

public sealed partial class VaultClient
{
    private AppRoleService.AppRoleServiceClient AppRoles => new(_invoker);

    /// <summary>Creates or replaces a machine-login role.</summary>
    /// <param name="role">The role: name, policies, token and secret-id lifetimes, bound networks.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The role as stored (with defaults filled in).</returns>
    /// <exception cref="Grpc.Core.RpcException">InvalidArgument for a bad name, policy, lifetime or network.</exception>
    public async Task<Role> PutRoleAsync(Role role, CancellationToken cancellationToken = default) =>
        await AppRoles.PutRoleAsync(new PutRoleRequest { Role = role }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Reads a role.</summary>
    /// <param name="name">The role's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The role.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown role.</exception>
    public async Task<Role> GetRoleAsync(string name, CancellationToken cancellationToken = default) =>
        await AppRoles.GetRoleAsync(new GetRoleRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Lists the names of all roles.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The role names.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task<IReadOnlyList<string>> ListRolesAsync(CancellationToken cancellationToken = default) =>
        (await AppRoles.ListRolesAsync(new ListRolesRequest(), Call(cancellationToken)).ConfigureAwait(false)).Names;

    /// <summary>Deletes a role and every secret id issued for it.</summary>
    /// <param name="name">The role's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the role is gone.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown role.</exception>
    public async Task DeleteRoleAsync(string name, CancellationToken cancellationToken = default) =>
        await AppRoles.DeleteRoleAsync(new DeleteRoleRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Reads a role's role id (not a secret: it names the role at login).</summary>
    /// <param name="name">The role's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The role id.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown role.</exception>
    public async Task<string> GetRoleIdAsync(string name, CancellationToken cancellationToken = default) =>
        (await AppRoles.GetRoleIdAsync(new GetRoleIdRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false)).RoleId;

    /// <summary>Issues a secret id for a role; it is shown only in this response.</summary>
    /// <param name="name">The role's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The secret id, its accessor, expiry and number of uses.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown role.</exception>
    public async Task<CreateSecretIdResponse> CreateSecretIdAsync(string name, CancellationToken cancellationToken = default) =>
        await AppRoles.CreateSecretIdAsync(new CreateSecretIdRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Logs in with a role id and secret id; needs no token.</summary>
    /// <param name="roleId">The role id.</param>
    /// <param name="secretId">The secret id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The new token (shown once) and its details.</returns>
    /// <exception cref="Grpc.Core.RpcException">Unauthenticated for a wrong, expired or used-up secret id or a source outside the role's networks; ResourceExhausted after repeated failures.</exception>
    public async Task<AppRoleLoginResponse> AppRoleLoginAsync(string roleId, string secretId, CancellationToken cancellationToken = default) =>
        await AppRoles.LoginAsync(new AppRoleLoginRequest { RoleId = roleId, SecretId = secretId }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Destroys one secret id of a role, by its accessor: it can no longer log in (tokens it issued live on).</summary>
    /// <param name="name">The role's name.</param>
    /// <param name="accessor">The secret id's accessor, as <see cref="CreateSecretIdAsync"/> returned it.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the secret id is gone.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown role or accessor.</exception>
    public async Task DestroySecretIdAsync(string name, string accessor, CancellationToken cancellationToken = default) =>
        await AppRoles.DestroySecretIdAsync(new DestroySecretIdRequest { Name = name, Accessor = accessor }, Call(cancellationToken)).ConfigureAwait(false);
}
