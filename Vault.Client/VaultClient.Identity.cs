using Vault.Protocol.V1;

namespace Vault.Client;

public sealed partial class VaultClient
{
    private UserpassService.UserpassServiceClient Userpass => new(_invoker);

    private IdentityService.IdentityServiceClient Identity => new(_invoker);

    private MfaService.MfaServiceClient Mfa => new(_invoker);

    private LdapService.LdapServiceClient Ldap => new(_invoker);

    /// <summary>Creates or replaces a userpass user (a person's login).</summary>
    /// <param name="user">The user: name, entity (default: the user's own), policies, token lifetimes.</param>
    /// <param name="password">The password (8 to 1024 characters): required for a new user; for an existing one it resets the password and ends a lockout. Null keeps it.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The user as stored.</returns>
    /// <exception cref="Grpc.Core.RpcException">InvalidArgument for a bad name, entity, policy, lifetime or password, or a new user without a password.</exception>
    public async Task<User> PutUserAsync(User user, string? password = null, CancellationToken cancellationToken = default) =>
        await Userpass.PutUserAsync(new PutUserRequest { User = user, Password = password ?? "" }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Reads a userpass user, with their failed logins and any lockout.</summary>
    /// <param name="name">The username.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The user.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown user.</exception>
    public async Task<User> GetUserAsync(string name, CancellationToken cancellationToken = default) =>
        await Userpass.GetUserAsync(new GetUserRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Lists the userpass usernames.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The usernames.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task<IReadOnlyList<string>> ListUsersAsync(CancellationToken cancellationToken = default) =>
        (await Userpass.ListUsersAsync(new ListUsersRequest(), Call(cancellationToken)).ConfigureAwait(false)).Names;

    /// <summary>Deletes a userpass user (their entity stays).</summary>
    /// <param name="name">The username.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the user is gone.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown user.</exception>
    public async Task DeleteUserAsync(string name, CancellationToken cancellationToken = default) =>
        await Userpass.DeleteUserAsync(new DeleteUserRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Ends a user's lockout and clears their failed logins.</summary>
    /// <param name="name">The username.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The user as stored now.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown user.</exception>
    public async Task<User> UnlockUserAsync(string name, CancellationToken cancellationToken = default) =>
        await Userpass.UnlockUserAsync(new UnlockUserRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Logs a person in with their username and password (and a code when they are enrolled in MFA); needs no token.</summary>
    /// <param name="username">The username.</param>
    /// <param name="password">The password.</param>
    /// <param name="mfaCode">Six digits from the authenticator, or a recovery code; null when the person is not enrolled.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The new token (shown once) and its details, naming the person's entity.</returns>
    /// <exception cref="Grpc.Core.RpcException">Unauthenticated for an unknown user, a wrong password or code, a locked-out user or a disabled entity;
    /// FailedPrecondition "mfa required: …" for an enrolled person's right password without a code.</exception>
    public async Task<UserpassLoginResponse> UserpassLoginAsync(string username, string password, string? mfaCode = null, CancellationToken cancellationToken = default) =>
        await Userpass.LoginAsync(new UserpassLoginRequest { Username = username, Password = password, MfaCode = mfaCode ?? "" }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Enrols the calling person (or, for an admin, <paramref name="entity"/>) in TOTP MFA; in effect once a first code is validated.</summary>
    /// <param name="entity">Null: yourself. An entity's name: an admin enrolling someone, who then gets the QR code from them.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The otpauth:// URI for the authenticator and ten recovery codes, shown only here.</returns>
    /// <exception cref="Grpc.Core.RpcException">FailedPrecondition for a program's token enrolling itself, or an entity already enrolled.</exception>
    public async Task<EnrollMfaResponse> EnrollMfaAsync(string? entity = null, CancellationToken cancellationToken = default) =>
        await Mfa.EnrollAsync(new EnrollMfaRequest { Entity = entity ?? "" }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Sets how userpass logs people in.</summary>
    /// <param name="requireMfa">Every login needs a second factor (a person not enrolled is refused until an admin enrols them).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The configuration as stored.</returns>
    /// <exception cref="Grpc.Core.RpcException">PermissionDenied without update on auth/userpass/config.</exception>
    public async Task<UserpassConfig> SetUserpassConfigAsync(bool requireMfa, CancellationToken cancellationToken = default) =>
        await Userpass.SetConfigAsync(new SetUserpassConfigRequest { Config = new UserpassConfig { RequireMfa = requireMfa } }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Reads how userpass logs people in.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The configuration.</returns>
    /// <exception cref="Grpc.Core.RpcException">PermissionDenied without read on auth/userpass/config.</exception>
    public async Task<UserpassConfig> GetUserpassConfigAsync(CancellationToken cancellationToken = default) =>
        await Userpass.GetConfigAsync(new GetUserpassConfigRequest(), Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Validates a code for the calling token: completes an enrolment, and satisfies step-up rules for their window.</summary>
    /// <param name="code">Six digits from the authenticator, or a recovery code.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>When it was validated, and the recovery codes left.</returns>
    /// <exception cref="Grpc.Core.RpcException">Unauthenticated for a wrong, replayed or out-of-window code.</exception>
    public async Task<ValidateMfaResponse> ValidateMfaAsync(string code, CancellationToken cancellationToken = default) =>
        await Mfa.ValidateAsync(new ValidateMfaRequest { Code = code }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Shows whether an entity is enrolled in MFA.</summary>
    /// <param name="entity">The entity's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Enrolled, pending, recovery codes left.</returns>
    /// <exception cref="Grpc.Core.RpcException">PermissionDenied without read on identity/entity/&lt;name&gt;/mfa.</exception>
    public async Task<MfaStatus> GetMfaAsync(string entity, CancellationToken cancellationToken = default) =>
        await Mfa.GetMfaAsync(new GetMfaRequest { Entity = entity }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Removes an entity's MFA enrolment (a lost authenticator).</summary>
    /// <param name="entity">The entity's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the enrolment is gone.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound when the entity has no enrolment.</exception>
    public async Task ResetMfaAsync(string entity, CancellationToken cancellationToken = default) =>
        await Mfa.ResetMfaAsync(new ResetMfaRequest { Entity = entity }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Changes a person's password, proven with the current one; needs no token.</summary>
    /// <param name="username">The username.</param>
    /// <param name="currentPassword">The current password (a wrong one counts towards a lockout).</param>
    /// <param name="newPassword">The new password, 8 to 1024 characters.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the new password is in effect.</returns>
    /// <exception cref="Grpc.Core.RpcException">Unauthenticated for a wrong current password or a locked-out user; InvalidArgument for a bad new one.</exception>
    public async Task ChangePasswordAsync(string username, string currentPassword, string newPassword, CancellationToken cancellationToken = default) =>
        await Userpass.ChangePasswordAsync(new ChangePasswordRequest { Username = username, CurrentPassword = currentPassword, NewPassword = newPassword }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Creates or replaces an entity (a person).</summary>
    /// <param name="entity">The entity: name, policies, whether it is disabled.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The entity as stored, with its id and groups.</returns>
    /// <exception cref="Grpc.Core.RpcException">InvalidArgument for a bad name or policy.</exception>
    public async Task<Entity> PutEntityAsync(Entity entity, CancellationToken cancellationToken = default) =>
        await Identity.PutEntityAsync(new PutEntityRequest { Entity = entity }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Reads an entity.</summary>
    /// <param name="name">The entity's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The entity.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown entity.</exception>
    public async Task<Entity> GetEntityAsync(string name, CancellationToken cancellationToken = default) =>
        await Identity.GetEntityAsync(new GetEntityRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Lists the entity names.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The entity names.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task<IReadOnlyList<string>> ListEntitiesAsync(CancellationToken cancellationToken = default) =>
        (await Identity.ListEntitiesAsync(new ListEntitiesRequest(), Call(cancellationToken)).ConfigureAwait(false)).Names;

    /// <summary>Deletes an entity: it leaves its groups and its tokens stop working.</summary>
    /// <param name="name">The entity's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the entity is gone.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown entity.</exception>
    public async Task DeleteEntityAsync(string name, CancellationToken cancellationToken = default) =>
        await Identity.DeleteEntityAsync(new DeleteEntityRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Creates or replaces a group: its policies and its members (entity names).</summary>
    /// <param name="group">The group.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The group as stored.</returns>
    /// <exception cref="Grpc.Core.RpcException">InvalidArgument for a bad name, an unknown policy or an unknown member.</exception>
    public async Task<Group> PutGroupAsync(Group group, CancellationToken cancellationToken = default) =>
        await Identity.PutGroupAsync(new PutGroupRequest { Group = group }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Reads a group.</summary>
    /// <param name="name">The group's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The group.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown group.</exception>
    public async Task<Group> GetGroupAsync(string name, CancellationToken cancellationToken = default) =>
        await Identity.GetGroupAsync(new GetGroupRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Lists the group names.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The group names.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task<IReadOnlyList<string>> ListGroupsAsync(CancellationToken cancellationToken = default) =>
        (await Identity.ListGroupsAsync(new ListGroupsRequest(), Call(cancellationToken)).ConfigureAwait(false)).Names;

    /// <summary>Deletes a group; its members lose its policies.</summary>
    /// <param name="name">The group's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the group is gone.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown group.</exception>
    public async Task DeleteGroupAsync(string name, CancellationToken cancellationToken = default) =>
        await Identity.DeleteGroupAsync(new DeleteGroupRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Logs a person in with their directory username and password (and a code when they are enrolled in MFA); needs no token.</summary>
    /// <param name="username">The directory username.</param>
    /// <param name="password">The directory password.</param>
    /// <param name="mfaCode">Six digits from the authenticator, or a recovery code; null when the person is not enrolled.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The new token (shown once) and its details, naming the person's entity.</returns>
    /// <exception cref="Grpc.Core.RpcException">Unauthenticated for a password the directory refused; Unavailable when the directory cannot be reached over verified TLS;
    /// FailedPrecondition when LDAP login is not configured, or "mfa required: …" for an enrolled person without a code.</exception>
    public async Task<LdapLoginResponse> LdapLoginAsync(string username, string password, string? mfaCode = null, CancellationToken cancellationToken = default) =>
        await Ldap.LoginAsync(new LdapLoginRequest { Username = username, Password = password, MfaCode = mfaCode ?? "" }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Configures directory login: where, how it is trusted, where the person and their groups are, and what the groups map to.</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The configuration as stored.</returns>
    /// <exception cref="Grpc.Core.RpcException">InvalidArgument naming the field (a plaintext url, a bad CA, a template without {{username}}, an unknown vault group).</exception>
    public async Task<LdapConfig> SetLdapConfigAsync(LdapConfig config, CancellationToken cancellationToken = default) =>
        await Ldap.SetConfigAsync(new SetLdapConfigRequest { Config = config }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Reads the directory login configuration.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The configuration.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound when LDAP login is not configured.</exception>
    public async Task<LdapConfig> GetLdapConfigAsync(CancellationToken cancellationToken = default) =>
        await Ldap.GetConfigAsync(new GetLdapConfigRequest(), Call(cancellationToken)).ConfigureAwait(false);
}
