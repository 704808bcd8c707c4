using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Security;

/// <summary>What a policy must grant for a call: any of <paramref name="AnyOf"/> on <paramref name="Path"/>.</summary>
/// <param name="Glob">The policy rule path that grants exactly this (differs from the path only where
/// the path cannot be written as a rule, e.g. the trailing '/' of a list prefix).</param>
/// <param name="AlsoRead">Paths the caller must also be able to read (granted to every token the
/// matrix makes for the row, so only <paramref name="Path"/> varies).</param>
public sealed record Requirement(string Path, string[] AnyOf, string? Glob = null, string[]? AlsoRead = null)
{
    public string RuleGlob => Glob ?? Path;
}

/// <summary>A request ready to send, what it needs, and how to read the state it would change.</summary>
/// <param name="Access">Null for the RPCs that need no token (init, unseal, status).</param>
/// <param name="State">Reads (as root) what the call would change; equal before and after a refused call.</param>
/// <param name="Allowed">What an allowed call answers: OK, or for a call whose effect needs a state
/// the shared vault must not be in (an audit gap to acknowledge), the domain's refusal past authorisation.</param>
/// <param name="AsToken">For an RPC that needs a token but no policy (it acts for the token's own
/// person): the token to call with.</param>
public sealed record PreparedCall(IMessage Request, Requirement? Access, Func<Task<string>>? State = null, StatusCode Allowed = StatusCode.OK, string? AsToken = null);

/// <summary>One row of the matrix: an RPC, a variant of it, and how to prepare a call with fresh, unique inputs.</summary>
public sealed record RpcCase(string Method, string Variant, Func<TestVault, Task<PreparedCall>> PrepareAsync)
{
    public string Name => Variant.Length == 0 ? Method : $"{Method}#{Variant}";

    public override string ToString() => Name;
}

/// <summary>
/// The authorisation table the tests hold the server to, written from the API contract (the
/// comments in the .proto files) and mirroring Vault.Server/Grpc/AccessRules.cs. Every vault.v1
/// method must have a row; a method without one fails the matrix tests.
/// </summary>
public static class RpcMatrix
{
    /// <summary>Every capability a rule can name, except the umbrella <c>admin</c> and <c>deny</c>.</summary>
    public static readonly string[] Capabilities = ["read", "list", "create", "update", "delete", "rotate", "checkout"];

    public static IReadOnlyList<RpcCase> Cases { get; } =
    [
        // SystemService: init, unseal and status need no token.
        new("vault.v1.SystemService/Init", "", _ => Public(new InitRequest { Passphrase = TestVault.Passphrase, Kdf = TestVault.FastKdf })),
        new("vault.v1.SystemService/Unseal", "", _ => Public(new UnsealRequest { Passphrase = TestVault.Passphrase })),
        new("vault.v1.SystemService/Status", "", _ => Public(new StatusRequest())),
        new("vault.v1.SystemService/Seal", "", v => Ready(new SealRequest(), new("sys/seal", ["update"]), () => SealStateAsync(v))),
        // Needs no token (for a vault with none left): a reset touches nothing.
        new("vault.v1.SystemService/GenerateRoot", "", _ => Public(new GenerateRootRequest { Reset = true })),
        // An allowed call gets past authorisation to the new passphrase's check (the shared vault keeps its own).
        new("vault.v1.SystemService/Rekey", "", v => Task.FromResult(new PreparedCall(new RekeyRequest { Passphrase = TestVault.Passphrase, NewPassphrase = "short" }, new("sys/rekey", ["update"]), () => SealStateAsync(v), Allowed: StatusCode.InvalidArgument))),
        new("vault.v1.SystemService/RotateKey", "", v => Ready(new RotateKeyRequest(), new("sys/rotate-key", ["update"]), () => SealStateAsync(v))),
        new("vault.v1.SystemService/Backup", "", _ => Ready(new BackupRequest(), new("sys/backup", ["read"]))),
        new("vault.v1.EventService/WatchEvents", "", _ => Ready(new WatchEventsRequest { TypePrefix = "rotation." }, new("sys/events", ["read"]))),

        // KvService: policies name KV paths with the prefix kv/.
        new("vault.v1.KvService/Put", "new-path", v =>
        {
            var path = UniquePath();
            return Ready(new PutSecretRequest { Path = path, Data = { ["v"] = "new" } }, new($"kv/{path}", ["create"]), () => MetadataAsync(v, path));
        }),
        new("vault.v1.KvService/Put", "existing-path", async v =>
        {
            var path = await SeedAsync(v);
            return new(new PutSecretRequest { Path = path, Data = { ["v"] = "changed" } }, new($"kv/{path}", ["update"]), () => MetadataAsync(v, path));
        }),
        new("vault.v1.KvService/Get", "", async v =>
        {
            var path = await SeedAsync(v);
            return new(new GetSecretRequest { Path = path }, new($"kv/{path}", ["read"]));
        }),
        new("vault.v1.KvService/List", "", async v =>
        {
            var folder = UniquePath();
            await SeedAsync(v, $"{folder}/s");
            // A rule cannot end in '/', so the narrowest rule that grants the prefix is folder/*.
            return new(new ListSecretsRequest { Prefix = folder }, new($"kv/{folder}/", ["list"], $"kv/{folder}/*"));
        }),
        new("vault.v1.KvService/Delete", "", async v =>
        {
            var path = await SeedAsync(v);
            return new(new DeleteSecretRequest { Path = path }, new($"kv/{path}", ["delete"]), () => MetadataAsync(v, path));
        }),
        new("vault.v1.KvService/Undelete", "", async v =>
        {
            var path = await SeedAsync(v);
            await v.Kv.DeleteAsync(new DeleteSecretRequest { Path = path, Versions = { 1 } }, v.As());
            return new(new UndeleteSecretRequest { Path = path, Versions = { 1 } }, new($"kv/{path}", ["update"]), () => MetadataAsync(v, path));
        }),
        new("vault.v1.KvService/Destroy", "", async v =>
        {
            var path = await SeedAsync(v);
            return new(new DestroySecretRequest { Path = path, Versions = { 1 } }, new($"kv/{path}", ["delete"]), () => MetadataAndValueAsync(v, path));
        }),
        new("vault.v1.KvService/GetMetadata", "", async v =>
        {
            var path = await SeedAsync(v);
            return new(new GetMetadataRequest { Path = path }, new($"kv/{path}", ["read"]));
        }),
        new("vault.v1.KvService/UpdateMetadata", "", async v =>
        {
            var path = await SeedAsync(v);
            var request = new UpdateMetadataRequest { Path = path, MaxVersions = 3, CasRequired = true, CustomMetadata = { ["owner"] = "sec" }, ReplaceCustomMetadata = true };
            return new(request, new($"kv/{path}", ["update"]), () => MetadataAsync(v, path));
        }),
        new("vault.v1.KvService/DeleteMetadata", "", async v =>
        {
            var path = await SeedAsync(v);
            return new(new DeleteMetadataRequest { Path = path }, new($"kv/{path}", ["delete"]), () => MetadataAndValueAsync(v, path));
        }),

        // TokenService: acting on another token (by accessor) needs a rule on its accessor path.
        new("vault.v1.TokenService/Create", "", _ =>
            Ready(new CreateTokenRequest { Ttl = Duration.FromTimeSpan(TimeSpan.FromHours(1)), DisplayName = "matrix" }, new("auth/token/create", ["create", "update"]))),
        new("vault.v1.TokenService/Lookup", "other-token", async v =>
        {
            var target = await TargetTokenAsync(v);
            return new(new LookupTokenRequest { Accessor = target }, new($"auth/token/accessors/{target}", ["read"]));
        }),
        new("vault.v1.TokenService/Renew", "other-token", async v =>
        {
            var target = await TargetTokenAsync(v);
            return new(new RenewTokenRequest { Accessor = target, Increment = Duration.FromTimeSpan(TimeSpan.FromHours(2)) },
                new($"auth/token/accessors/{target}", ["update"]), () => TokenStateAsync(v, target));
        }),
        new("vault.v1.TokenService/Revoke", "other-token", async v =>
        {
            var target = await TargetTokenAsync(v);
            return new(new RevokeTokenRequest { Accessor = target }, new($"auth/token/accessors/{target}", ["delete"]), () => TokenStateAsync(v, target));
        }),

        // PolicyService: policies live under sys/policy/<name>.
        new("vault.v1.PolicyService/Put", "new-policy", v =>
        {
            var name = UniqueName();
            return Ready(new PutPolicyRequest { Policy = PolicyNamed(name, "kv/matrix/*", "read") }, new($"sys/policy/{name}", ["create"]), () => PolicyStateAsync(v, name));
        }),
        new("vault.v1.PolicyService/Put", "existing-policy", async v =>
        {
            var name = await SeedPolicyAsync(v);
            return new(new PutPolicyRequest { Policy = PolicyNamed(name, "*", "admin") }, new($"sys/policy/{name}", ["update"]), () => PolicyStateAsync(v, name));
        }),
        new("vault.v1.PolicyService/Get", "", async v =>
        {
            var name = await SeedPolicyAsync(v);
            return new(new GetPolicyRequest { Name = name }, new($"sys/policy/{name}", ["read"]));
        }),
        new("vault.v1.PolicyService/List", "", _ => Ready(new ListPoliciesRequest(), new("sys/policy", ["list"]))),
        new("vault.v1.PolicyService/Delete", "", async v =>
        {
            var name = await SeedPolicyAsync(v);
            return new(new DeletePolicyRequest { Name = name }, new($"sys/policy/{name}", ["delete"]), () => PolicyStateAsync(v, name));
        }),

        // AppRoleService: roles live under auth/approle/role/<name>; login needs no token.
        new("vault.v1.AppRoleService/PutRole", "new-role", async v =>
        {
            var name = UniqueName();
            var policy = await SeedPolicyAsync(v);
            return new(new PutRoleRequest { Role = new Role { Name = name, Policies = { policy } } }, new($"auth/approle/role/{name}", ["create"]), () => RoleStateAsync(v, name));
        }),
        new("vault.v1.AppRoleService/PutRole", "existing-role", async v =>
        {
            var name = await SeedRoleAsync(v);
            var policy = await SeedPolicyAsync(v);
            return new(new PutRoleRequest { Role = new Role { Name = name, Policies = { policy }, SecretIdNumUses = 7 } }, new($"auth/approle/role/{name}", ["update"]), () => RoleStateAsync(v, name));
        }),
        new("vault.v1.AppRoleService/GetRole", "", async v =>
        {
            var name = await SeedRoleAsync(v);
            return new(new GetRoleRequest { Name = name }, new($"auth/approle/role/{name}", ["read"]));
        }),
        new("vault.v1.AppRoleService/ListRoles", "", _ => Ready(new ListRolesRequest(), new("auth/approle/role", ["list"]))),
        new("vault.v1.AppRoleService/DeleteRole", "", async v =>
        {
            var name = await SeedRoleAsync(v);
            return new(new DeleteRoleRequest { Name = name }, new($"auth/approle/role/{name}", ["delete"]), () => RoleStateAsync(v, name));
        }),
        new("vault.v1.AppRoleService/GetRoleId", "", async v =>
        {
            var name = await SeedRoleAsync(v);
            return new(new GetRoleIdRequest { Name = name }, new($"auth/approle/role/{name}/role-id", ["read"]));
        }),
        new("vault.v1.AppRoleService/CreateSecretId", "", async v =>
        {
            var name = await SeedRoleAsync(v);
            return new(new CreateSecretIdRequest { Name = name }, new($"auth/approle/role/{name}/secret-id", ["create", "update"]));
        }),
        new("vault.v1.AppRoleService/DestroySecretId", "", async v =>
        {
            var name = await SeedRoleAsync(v);
            var roles = new AppRoleService.AppRoleServiceClient(v.Channel);
            var roleId = (await roles.GetRoleIdAsync(new GetRoleIdRequest { Name = name }, v.As())).RoleId;
            var issued = await roles.CreateSecretIdAsync(new CreateSecretIdRequest { Name = name }, v.As());
            return new(new DestroySecretIdRequest { Name = name, Accessor = issued.SecretIdAccessor }, new($"auth/approle/role/{name}/secret-id", ["delete"]),
                () => SecretIdLoginStateAsync(v, roleId, issued.SecretId));
        }),
        new("vault.v1.AppRoleService/Login", "", async v =>
        {
            var name = await SeedRoleAsync(v);
            var roles = new AppRoleService.AppRoleServiceClient(v.Channel);
            var roleId = (await roles.GetRoleIdAsync(new GetRoleIdRequest { Name = name }, v.As())).RoleId;
            var secretId = (await roles.CreateSecretIdAsync(new CreateSecretIdRequest { Name = name }, v.As())).SecretId;
            return new(new AppRoleLoginRequest { RoleId = roleId, SecretId = secretId }, null);
        }),

        // UserpassService: users live under auth/userpass/user/<name>; login and a password change need no token.
        new("vault.v1.UserpassService/PutUser", "new-user", _ =>
        {
            var name = UniqueName();
            return Ready(new PutUserRequest { User = new User { Name = name }, Password = MatrixPassword }, new($"auth/userpass/user/{name}", ["create"]));
        }),
        new("vault.v1.UserpassService/PutUser", "existing-user", async v =>
        {
            var name = await SeedUserAsync(v);
            return new(new PutUserRequest { User = new User { Name = name, TokenTtl = Duration.FromTimeSpan(TimeSpan.FromMinutes(5)) } }, new($"auth/userpass/user/{name}", ["update"]), () => UserStateAsync(v, name));
        }),
        new("vault.v1.UserpassService/GetUser", "", async v =>
        {
            var name = await SeedUserAsync(v);
            return new(new GetUserRequest { Name = name }, new($"auth/userpass/user/{name}", ["read"]));
        }),
        new("vault.v1.UserpassService/ListUsers", "", _ => Ready(new ListUsersRequest(), new("auth/userpass/user", ["list"]))),
        new("vault.v1.UserpassService/DeleteUser", "", async v =>
        {
            var name = await SeedUserAsync(v);
            return new(new DeleteUserRequest { Name = name }, new($"auth/userpass/user/{name}", ["delete"]), () => UserStateAsync(v, name));
        }),
        // The shared vault must keep logins without MFA: the allowed call sets what is there already.
        new("vault.v1.UserpassService/SetConfig", "", v => Ready(new SetUserpassConfigRequest { Config = new UserpassConfig { RequireMfa = false } }, new("auth/userpass/config", ["update"]))),
        new("vault.v1.UserpassService/GetConfig", "", _ => Ready(new GetUserpassConfigRequest(), new("auth/userpass/config", ["read"]))),
        new("vault.v1.UserpassService/UnlockUser", "", async v =>
        {
            var name = await SeedUserAsync(v);
            var users = new UserpassService.UserpassServiceClient(v.Channel);
            await Assert.ThrowsAsync<RpcException>(async () => await users.LoginAsync(new UserpassLoginRequest { Username = name, Password = "a wrong password" }));
            return new(new UnlockUserRequest { Name = name }, new($"auth/userpass/user/{name}/lockout", ["update"]), () => UserStateAsync(v, name));
        }),
        new("vault.v1.UserpassService/Login", "", async v =>
        {
            var name = await SeedUserAsync(v);
            return new(new UserpassLoginRequest { Username = name, Password = MatrixPassword }, null);
        }),
        new("vault.v1.UserpassService/ChangePassword", "", async v =>
        {
            var name = await SeedUserAsync(v);
            return new(new ChangePasswordRequest { Username = name, CurrentPassword = MatrixPassword, NewPassword = MatrixPassword + " too" }, null);
        }),

        // AccessService: grants under access/grant/<name> (requesting one: access/grant/<name>/request),
        // requests under access/request/<id>; approvers are the grant's group, not a policy.
        new("vault.v1.AccessService/PutGrant", "new-grant", async v =>
        {
            var name = UniqueName();
            var (policy, group) = await SeedGrantPartsAsync(v);
            return new(new PutGrantRequest { Grant = new Grant { Name = name, Policies = { policy }, ApproverGroup = group, ApprovalsRequired = 1 } }, new($"access/grant/{name}", ["create"]));
        }),
        new("vault.v1.AccessService/PutGrant", "existing-grant", async v =>
        {
            var (name, policy, group) = await SeedGrantAsync(v);
            return new(new PutGrantRequest { Grant = new Grant { Name = name, Policies = { policy }, ApproverGroup = group, ApprovalsRequired = 1, MfaToApprove = true } },
                new($"access/grant/{name}", ["update"]), () => GrantStateAsync(v, name));
        }),
        new("vault.v1.AccessService/GetGrant", "", async v =>
        {
            var (name, _, _) = await SeedGrantAsync(v);
            return new(new GetGrantRequest { Name = name }, new($"access/grant/{name}", ["read"]));
        }),
        new("vault.v1.AccessService/ListGrants", "", _ => Ready(new ListGrantsRequest(), new("access/grant", ["list"]))),
        new("vault.v1.AccessService/DeleteGrant", "", async v =>
        {
            var (name, _, _) = await SeedGrantAsync(v);
            return new(new DeleteGrantRequest { Name = name }, new($"access/grant/{name}", ["delete"]), () => GrantStateAsync(v, name));
        }),
        // The matrix's tokens are programs': an allowed one gets past authorisation to "requests are for people".
        new("vault.v1.AccessService/CreateRequest", "", async v =>
        {
            var (name, _, _) = await SeedGrantAsync(v);
            return new(new CreateAccessRequestRequest { Grant = name, Reason = "matrix" }, new($"access/grant/{name}/request", ["create"]), Allowed: StatusCode.FailedPrecondition);
        }),
        new("vault.v1.AccessService/GetRequest", "other-request", async v =>
        {
            var (id, _) = await SeedAccessRequestAsync(v);
            return new(new GetAccessRequestRequest { Id = id }, new($"access/request/{id}", ["read"]));
        }),
        new("vault.v1.AccessService/ListRequests", "", _ => Ready(new ListAccessRequestsRequest(), new("access/request", ["list"]))),
        new("vault.v1.AccessService/WatchRequests", "", _ => Ready(new WatchAccessRequestsRequest { State = "pending" }, new("access/request", ["list"]))),
        new("vault.v1.AccessService/Approve", "", async v =>
        {
            var (id, approver) = await SeedAccessRequestAsync(v);
            return new(new ApproveAccessRequestRequest { Id = id }, null, AsToken: approver);
        }),
        new("vault.v1.AccessService/Deny", "", async v =>
        {
            var (id, approver) = await SeedAccessRequestAsync(v);
            return new(new DenyAccessRequestRequest { Id = id }, null, AsToken: approver);
        }),
        new("vault.v1.AccessService/Revoke", "other-request", async v =>
        {
            var (id, _) = await SeedAccessRequestAsync(v);
            return new(new RevokeAccessRequestRequest { Id = id }, new($"access/request/{id}", ["update"]), () => AccessRequestStateAsync(v, id));
        }),

        // MfaService: enrol and validate act for the caller's own entity (a token, no policy);
        // an entity's enrolment is read and reset under identity/entity/<name>/mfa.
        new("vault.v1.MfaService/Enroll", "", async v =>
        {
            var (_, token) = await SeedPersonAsync(v);
            return new(new EnrollMfaRequest(), null, AsToken: token);
        }),
        new("vault.v1.MfaService/Enroll", "for-entity", async v =>
        {
            var (name, _) = await SeedPersonAsync(v);
            return new(new EnrollMfaRequest { Entity = name }, new($"identity/entity/{name}/mfa", ["update"]), () => MfaStateAsync(v, name));
        }),
        new("vault.v1.MfaService/Validate", "", async v =>
        {
            var (_, token) = await SeedPersonAsync(v);
            var uri = (await new MfaService.MfaServiceClient(v.Channel).EnrollAsync(new EnrollMfaRequest(), v.As(token))).OtpauthUri;
            return new(new ValidateMfaRequest { Code = Otp.Code(uri) }, null, AsToken: token);
        }),
        new("vault.v1.MfaService/GetMfa", "", async v =>
        {
            var (name, _) = await SeedPersonAsync(v);
            return new(new GetMfaRequest { Entity = name }, new($"identity/entity/{name}/mfa", ["read"]));
        }),
        new("vault.v1.MfaService/ResetMfa", "", async v =>
        {
            var (name, token) = await SeedPersonAsync(v);
            await new MfaService.MfaServiceClient(v.Channel).EnrollAsync(new EnrollMfaRequest(), v.As(token));
            return new(new ResetMfaRequest { Entity = name }, new($"identity/entity/{name}/mfa", ["delete"]), () => MfaStateAsync(v, name));
        }),

        // LdapService: its configuration under auth/ldap/config; login needs no token. The directory
        // is a closed loopback port: a login is refused past authorisation (UNAVAILABLE).
        new("vault.v1.LdapService/SetConfig", "", _ => Ready(new SetLdapConfigRequest { Config = MatrixLdapConfig() }, new("auth/ldap/config", ["update"]))),
        new("vault.v1.LdapService/GetConfig", "", async v =>
        {
            await new LdapService.LdapServiceClient(v.Channel).SetConfigAsync(new SetLdapConfigRequest { Config = MatrixLdapConfig() }, v.As());
            return new(new GetLdapConfigRequest(), new("auth/ldap/config", ["read"]));
        }),
        new("vault.v1.LdapService/Login", "", async v =>
        {
            await new LdapService.LdapServiceClient(v.Channel).SetConfigAsync(new SetLdapConfigRequest { Config = MatrixLdapConfig() }, v.As());
            return new(new LdapLoginRequest { Username = UniqueName(), Password = MatrixPassword }, null);
        }),

        // IdentityService: entities under identity/entity/<name>, groups under identity/group/<name>.
        new("vault.v1.IdentityService/PutEntity", "new-entity", _ =>
        {
            var name = UniqueName();
            return Ready(new PutEntityRequest { Entity = new Entity { Name = name } }, new($"identity/entity/{name}", ["create"]));
        }),
        new("vault.v1.IdentityService/PutEntity", "existing-entity", async v =>
        {
            var name = await SeedEntityAsync(v);
            var policy = await SeedPolicyAsync(v);
            return new(new PutEntityRequest { Entity = new Entity { Name = name, Policies = { policy } } }, new($"identity/entity/{name}", ["update"]), () => EntityStateAsync(v, name));
        }),
        new("vault.v1.IdentityService/GetEntity", "", async v =>
        {
            var name = await SeedEntityAsync(v);
            return new(new GetEntityRequest { Name = name }, new($"identity/entity/{name}", ["read"]));
        }),
        new("vault.v1.IdentityService/ListEntities", "", _ => Ready(new ListEntitiesRequest(), new("identity/entity", ["list"]))),
        new("vault.v1.IdentityService/DeleteEntity", "", async v =>
        {
            var name = await SeedEntityAsync(v);
            return new(new DeleteEntityRequest { Name = name }, new($"identity/entity/{name}", ["delete"]), () => EntityStateAsync(v, name));
        }),
        new("vault.v1.IdentityService/PutGroup", "new-group", async v =>
        {
            var name = UniqueName();
            var member = await SeedEntityAsync(v);
            return new(new PutGroupRequest { Group = new Group { Name = name, Members = { member } } }, new($"identity/group/{name}", ["create"]), () => EntityStateAsync(v, member));
        }),
        new("vault.v1.IdentityService/PutGroup", "existing-group", async v =>
        {
            var name = await SeedGroupAsync(v);
            var policy = await SeedPolicyAsync(v);
            return new(new PutGroupRequest { Group = new Group { Name = name, Policies = { policy } } }, new($"identity/group/{name}", ["update"]), () => GroupStateAsync(v, name));
        }),
        new("vault.v1.IdentityService/GetGroup", "", async v =>
        {
            var name = await SeedGroupAsync(v);
            return new(new GetGroupRequest { Name = name }, new($"identity/group/{name}", ["read"]));
        }),
        new("vault.v1.IdentityService/ListGroups", "", _ => Ready(new ListGroupsRequest(), new("identity/group", ["list"]))),
        new("vault.v1.IdentityService/DeleteGroup", "", async v =>
        {
            var name = await SeedGroupAsync(v);
            return new(new DeleteGroupRequest { Name = name }, new($"identity/group/{name}", ["delete"]), () => GroupStateAsync(v, name));
        }),

        // TargetService: targets live under rotation/target/<name>; registering one also needs read
        // on its admin secret. Seeded targets point at a closed loopback port and never rotate on
        // their own, so the matrix needs no database.
        new("vault.v1.TargetService/PutTarget", "new-target", async v =>
        {
            var admin = await SeedAdminSecretAsync(v);
            var name = UniqueName();
            return new(new PutTargetRequest { Target = TargetNamed(name, admin), CurrentPassword = "matrix-current-1", SkipVerification = true },
                new($"rotation/target/{name}", ["create"], AlsoRead: [$"kv/{admin}"]), () => TargetStateAsync(v, name));
        }),
        new("vault.v1.TargetService/PutTarget", "existing-target", async v =>
        {
            var (name, admin) = await SeedTargetAsync(v);
            var changed = TargetNamed(name, admin);
            changed.PasswordPolicy = new PasswordPolicy { Length = 40 };
            return new(new PutTargetRequest { Target = changed, SkipVerification = true }, new($"rotation/target/{name}", ["update"], AlsoRead: [$"kv/{admin}"]), () => TargetStateAsync(v, name));
        }),
        new("vault.v1.TargetService/GetTarget", "", async v =>
        {
            var (name, _) = await SeedTargetAsync(v);
            return new(new GetTargetRequest { Name = name }, new($"rotation/target/{name}", ["read"]));
        }),
        new("vault.v1.TargetService/ListTargets", "", _ => Ready(new ListTargetsRequest(), new("rotation/target", ["list"]))),
        new("vault.v1.TargetService/DeleteTarget", "", async v =>
        {
            var (name, _) = await SeedTargetAsync(v);
            return new(new DeleteTargetRequest { Name = name }, new($"rotation/target/{name}", ["delete"]), () => TargetStateAsync(v, name));
        }),
        new("vault.v1.TargetService/RotateTarget", "", async v =>
        {
            var (name, _) = await SeedTargetAsync(v);
            return new(new RotateTargetRequest { Name = name }, new($"rotation/target/{name}", ["rotate"]), () => TargetHistoryAsync(v, name));
        }),
        new("vault.v1.TargetService/PauseTarget", "", async v =>
        {
            var (name, _) = await SeedTargetAsync(v);
            return new(new PauseTargetRequest { Name = name }, new($"rotation/target/{name}/pause", ["update"]), () => TargetStateAsync(v, name));
        }),
        new("vault.v1.TargetService/ResumeTarget", "", async v =>
        {
            var (name, _) = await SeedTargetAsync(v);
            await new TargetService.TargetServiceClient(v.Channel).PauseTargetAsync(new PauseTargetRequest { Name = name }, v.As());
            return new(new ResumeTargetRequest { Name = name }, new($"rotation/target/{name}/pause", ["update"]), () => TargetStateAsync(v, name));
        }),
        new("vault.v1.TargetService/ListTargetHistory", "", async v =>
        {
            var (name, _) = await SeedTargetAsync(v);
            return new(new ListTargetHistoryRequest { Name = name }, new($"rotation/target/{name}/history", ["read"]));
        }),
        new("vault.v1.TargetService/WatchTarget", "", async v =>
        {
            var (name, _) = await SeedTargetAsync(v);
            return new(new WatchTargetRequest { Name = name }, new($"rotation/target/{name}/credential", ["read"]));
        }),
        new("vault.v1.TargetService/GetTargetCredential", "", async v =>
        {
            var (name, _) = await SeedTargetAsync(v);
            return new(new GetTargetCredentialRequest { Name = name }, new($"rotation/target/{name}/credential", ["read"]));
        }),

        // LeaseService: roles under lease/role/<name>, credentials under lease/creds/<role>, leases
        // under lease/id/<id>. Issuing makes a real user on a private PostgreSQL.
        new("vault.v1.LeaseService/PutDynamicRole", "new-role", async v =>
        {
            var (target, admin) = await SeedTargetAsync(v);
            var name = UniqueName();
            return new(new PutDynamicRoleRequest { Role = new DynamicRole { Name = name, Target = target } },
                new($"lease/role/{name}", ["create"], AlsoRead: [$"rotation/target/{target}", $"kv/{admin}"]), () => DynamicRoleStateAsync(v, name));
        }),
        new("vault.v1.LeaseService/PutDynamicRole", "existing-role", async v =>
        {
            var (name, target, admin) = await SeedDynamicRoleAsync(v);
            return new(new PutDynamicRoleRequest { Role = new DynamicRole { Name = name, Target = target, CreationStatements = { "SELECT 1" } } },
                new($"lease/role/{name}", ["update"], AlsoRead: [$"rotation/target/{target}", $"kv/{admin}"]), () => DynamicRoleStateAsync(v, name));
        }),
        new("vault.v1.LeaseService/GetDynamicRole", "", async v =>
        {
            var (name, _, _) = await SeedDynamicRoleAsync(v);
            return new(new GetDynamicRoleRequest { Name = name }, new($"lease/role/{name}", ["read"]));
        }),
        new("vault.v1.LeaseService/ListDynamicRoles", "", _ => Ready(new ListDynamicRolesRequest(), new("lease/role", ["list"]))),
        new("vault.v1.LeaseService/DeleteDynamicRole", "", async v =>
        {
            var (name, _, _) = await SeedDynamicRoleAsync(v);
            return new(new DeleteDynamicRoleRequest { Name = name }, new($"lease/role/{name}", ["delete"]), () => DynamicRoleStateAsync(v, name));
        }),
        new("vault.v1.LeaseService/IssueCredential", "", async v =>
        {
            var (name, _, _) = await SeedDynamicRoleAsync(v, realDatabase: true);
            return new(new IssueCredentialRequest { Role = name }, new($"lease/creds/{name}", ["read"]), () => LeaseListAsync(v, $"dynamic/{name}/"));
        }),
        new("vault.v1.LeaseService/RenewLease", "", async v =>
        {
            var id = await SeedLeaseAsync(v);
            return new(new RenewLeaseRequest { LeaseId = id, Increment = Duration.FromTimeSpan(TimeSpan.FromMinutes(30)) }, new($"lease/id/{id}", ["update"]), () => LeaseStateAsync(v, id));
        }),
        new("vault.v1.LeaseService/RevokeLease", "", async v =>
        {
            var id = await SeedLeaseAsync(v);
            return new(new RevokeLeaseRequest { LeaseId = id }, new($"lease/id/{id}", ["delete"]), () => LeaseStateAsync(v, id));
        }),
        new("vault.v1.LeaseService/LookupLease", "", async v =>
        {
            var id = await SeedLeaseAsync(v);
            return new(new LookupLeaseRequest { LeaseId = id }, new($"lease/id/{id}", ["read"]));
        }),
        new("vault.v1.LeaseService/RevokeLeasePrefix", "", async v =>
        {
            var id = await SeedLeaseAsync(v);
            var prefix = id[..(id.LastIndexOf('/') + 1)];
            return new(new RevokeLeasePrefixRequest { Prefix = prefix }, new($"lease/id/{prefix}", ["delete"], $"lease/id/{prefix}*"), () => LeaseStateAsync(v, id));
        }),
        new("vault.v1.LeaseService/ListLeases", "", async v =>
        {
            var id = await SeedLeaseAsync(v);
            var prefix = id[..(id.LastIndexOf('/') + 1)];
            return new(new ListLeasesRequest { Prefix = prefix }, new($"lease/id/{prefix}", ["list"], $"lease/id/{prefix}*"));
        }),

        new("vault.v1.LeaseService/PutCheckoutSet", "new-set", async v =>
        {
            var (target, _) = await SeedTargetAsync(v);
            var name = UniqueName();
            return new(new PutCheckoutSetRequest { Set = new CheckoutSet { Name = name, Targets = { target } } },
                new($"lease/set/{name}", ["create"], AlsoRead: [$"rotation/target/{target}/credential"]), () => CheckoutSetStateAsync(v, name));
        }),
        new("vault.v1.LeaseService/PutCheckoutSet", "existing-set", async v =>
        {
            var (name, target) = await SeedCheckoutSetAsync(v);
            return new(new PutCheckoutSetRequest { Set = new CheckoutSet { Name = name, Targets = { target }, MaxTtl = Duration.FromTimeSpan(TimeSpan.FromHours(2)) } },
                new($"lease/set/{name}", ["update"], AlsoRead: [$"rotation/target/{target}/credential"]), () => CheckoutSetStateAsync(v, name));
        }),
        new("vault.v1.LeaseService/GetCheckoutSet", "", async v =>
        {
            var (name, _) = await SeedCheckoutSetAsync(v);
            return new(new GetCheckoutSetRequest { Name = name }, new($"lease/set/{name}", ["read"]));
        }),
        new("vault.v1.LeaseService/ListCheckoutSets", "", _ => Ready(new ListCheckoutSetsRequest(), new("lease/set", ["list"]))),
        new("vault.v1.LeaseService/DeleteCheckoutSet", "", async v =>
        {
            var (name, _) = await SeedCheckoutSetAsync(v);
            return new(new DeleteCheckoutSetRequest { Name = name }, new($"lease/set/{name}", ["delete"]), () => CheckoutSetStateAsync(v, name));
        }),
        new("vault.v1.LeaseService/CheckoutAccount", "", async v =>
        {
            var (name, _) = await SeedCheckoutSetAsync(v);
            return new(new CheckoutAccountRequest { Set = name }, new($"lease/set/{name}", ["checkout"]), () => CheckoutSetStateAsync(v, name));
        }),
        new("vault.v1.LeaseService/LeaseStaticCredential", "", async v =>
        {
            var (name, _) = await SeedTargetAsync(v);
            return new(new LeaseStaticCredentialRequest { Target = name }, new($"rotation/target/{name}/credential", ["read"]), () => LeaseListAsync(v, $"static/{name}/"));
        }),

        // AuditService.
        new("vault.v1.AuditService/Tail", "", _ => Ready(new TailAuditRequest { Limit = 5 }, new("sys/audit", ["read"]))),
        new("vault.v1.AuditService/Verify", "", _ => Ready(new VerifyAuditRequest(), new("sys/audit", ["read"]))),
        new("vault.v1.AuditService/Hash", "", _ => Ready(new HashAuditRequest { Value = "matrix" }, new("sys/audit/hash", ["update"]))),
        // A healthy log has no gap: an allowed caller gets past authorisation to "nothing is missing".
        new("vault.v1.AuditService/AcknowledgeGap", "", _ => Task.FromResult(new PreparedCall(new AcknowledgeAuditGapRequest { LastMissing = 1 }, new("sys/audit/acknowledge", ["update"]), Allowed: StatusCode.FailedPrecondition))),
        // Keep the newest file: on a vault with one file an allowed call archives nothing, and a
        // refused one must not move a file either (AuditArchiveTests archives for real).
        new("vault.v1.AuditService/Archive", "", v => Ready(new ArchiveAuditRequest { KeepFiles = 1 }, new("sys/audit/archive", ["update"]), () => AuditFilesAsync(v))),

        // ReportService: reads only.
        new("vault.v1.ReportService/Credentials", "", _ => Ready(new CredentialReportRequest(), new("sys/report/credentials", ["read"]))),
    ];

    /// <summary>The rows for every vault.v1 method; a method with no row yields a row that fails.</summary>
    public static IEnumerable<object[]> Rows(bool authenticatedOnly)
    {
        foreach (var method in DescriptorInvoker.AllMethods)
        {
            var name = DescriptorInvoker.NameOf(method);
            var cases = Cases.Where(c => c.Method == name).ToList();
            if (cases.Count == 0)
            {
                yield return [name];
            }
            foreach (var c in cases)
            {
                if (!authenticatedOnly || (!IsPublic(c) && !IsTokenOnly(c)))
                {
                    yield return [c.Name];
                }
            }
        }
    }

    /// <summary>The row named <paramref name="name"/>; fails the test when the method has no row.</summary>
    public static RpcCase Case(string name) =>
        Cases.SingleOrDefault(c => c.Name == name)
        ?? throw new Xunit.Sdk.XunitException($"{name} has no row in {nameof(RpcMatrix)}: add its request builder and the access it needs");

    public static bool IsPublic(RpcCase c) =>
        c.Method is "vault.v1.SystemService/Init" or "vault.v1.SystemService/Unseal" or "vault.v1.SystemService/Status" or "vault.v1.AppRoleService/Login"
            or "vault.v1.UserpassService/Login" or "vault.v1.UserpassService/ChangePassword" or "vault.v1.LdapService/Login" or "vault.v1.SystemService/GenerateRoot";

    /// <summary>RPCs that need a token but no policy: they act for the token's own person.</summary>
    public static bool IsTokenOnly(RpcCase c) =>
        c.Name is "vault.v1.MfaService/Enroll" or "vault.v1.MfaService/Validate" or "vault.v1.AccessService/Approve" or "vault.v1.AccessService/Deny";

    public static Policy PolicyNamed(string name, string path, params string[] capabilities) =>
        new() { Name = name, Rules = { new PolicyRule { Path = path, Capabilities = { capabilities } } } };

    public static string UniquePath() => $"sec-{Guid.NewGuid():N}/s";

    public static string UniqueName() => $"sec-{Guid.NewGuid():N}";

    private static Task<PreparedCall> Public(IMessage request) => Task.FromResult(new PreparedCall(request, null));

    private static Task<PreparedCall> Ready(IMessage request, Requirement access, Func<Task<string>>? state = null) =>
        Task.FromResult(new PreparedCall(request, access, state));

    /// <summary>The audit files and the archived ones, by name.</summary>
    private static Task<string> AuditFilesAsync(TestVault v) =>
        Task.FromResult(string.Join(",", Directory.GetFiles(Path.Combine(v.DataDir, "audit"), "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(v.DataDir, f)).Order(StringComparer.Ordinal)));

    private static async Task<string> SeedAsync(TestVault v, string? path = null)
    {
        path ??= UniquePath();
        await v.Kv.PutAsync(new PutSecretRequest { Path = path, Data = { ["v"] = "seeded" } }, v.As());
        return path;
    }

    private static async Task<string> SeedPolicyAsync(TestVault v)
    {
        var name = UniqueName();
        await v.Policies.PutAsync(new PutPolicyRequest { Policy = PolicyNamed(name, "kv/seeded/*", "read") }, v.As());
        return name;
    }

    private static async Task<string> SeedRoleAsync(TestVault v)
    {
        var name = UniqueName();
        var policy = await SeedPolicyAsync(v);
        await new AppRoleService.AppRoleServiceClient(v.Channel).PutRoleAsync(new PutRoleRequest { Role = new Role { Name = name, Policies = { policy } } }, v.As());
        return name;
    }

    private const string MatrixPassword = "a matrix user's password";

    private static async Task<string> SeedUserAsync(TestVault v)
    {
        var name = UniqueName();
        await new UserpassService.UserpassServiceClient(v.Channel).PutUserAsync(new PutUserRequest { User = new User { Name = name }, Password = MatrixPassword }, v.As());
        return name;
    }

    /// <summary>A policy for a grant to confer, and an approver group with one member.</summary>
    private static async Task<(string Policy, string Group)> SeedGrantPartsAsync(TestVault v)
    {
        var policy = await SeedPolicyAsync(v);
        var group = UniqueName();
        var (approver, _) = await SeedPersonAsync(v);
        await new IdentityService.IdentityServiceClient(v.Channel).PutGroupAsync(new PutGroupRequest { Group = new Group { Name = group, Members = { approver } } }, v.As());
        return (policy, group);
    }

    private static async Task<(string Name, string Policy, string Group)> SeedGrantAsync(TestVault v)
    {
        var name = UniqueName();
        var (policy, group) = await SeedGrantPartsAsync(v);
        await new AccessService.AccessServiceClient(v.Channel).PutGrantAsync(new PutGrantRequest { Grant = new Grant { Name = name, Policies = { policy }, ApproverGroup = group, ApprovalsRequired = 1 } }, v.As());
        return (name, policy, group);
    }

    /// <summary>A pending request (made by a person allowed to) for a grant whose approver group has one member; returns the id and the approver's token.</summary>
    private static async Task<(string Id, string ApproverToken)> SeedAccessRequestAsync(TestVault v)
    {
        var name = UniqueName();
        var policy = await SeedPolicyAsync(v);
        var (approver, approverToken) = await SeedPersonAsync(v);
        var identity = new IdentityService.IdentityServiceClient(v.Channel);
        await identity.PutGroupAsync(new PutGroupRequest { Group = new Group { Name = name, Members = { approver } } }, v.As());
        var access = new AccessService.AccessServiceClient(v.Channel);
        await access.PutGrantAsync(new PutGrantRequest { Grant = new Grant { Name = name, Policies = { policy }, ApproverGroup = name, ApprovalsRequired = 1 } }, v.As());
        var (requester, requesterToken) = await SeedPersonAsync(v);
        await v.Policies.PutAsync(new PutPolicyRequest { Policy = PolicyNamed(name + "-req", $"access/grant/{name}/request", "create") }, v.As());
        await identity.PutEntityAsync(new PutEntityRequest { Entity = new Entity { Name = requester, Policies = { name + "-req" } } }, v.As());
        var request = await access.CreateRequestAsync(new CreateAccessRequestRequest { Grant = name, Reason = "matrix" }, v.As(requesterToken));
        return (request.Id, approverToken);
    }

    private static Task<string> GrantStateAsync(TestVault v, string name) =>
        Describe(async () => await new AccessService.AccessServiceClient(v.Channel).GetGrantAsync(new GetGrantRequest { Name = name }, v.As()));

    private static Task<string> AccessRequestStateAsync(TestVault v, string id) =>
        Describe(async () => await new AccessService.AccessServiceClient(v.Channel).GetRequestAsync(new GetAccessRequestRequest { Id = id }, v.As()));

    private static readonly Lazy<string> MatrixCa = new(() =>
    {
        using var ca = new TestCertificates("Matrix CA");
        return ca.CaPem;
    });

    /// <summary>A directory on a loopback port nothing listens on: configurable, never reachable.</summary>
    private static LdapConfig MatrixLdapConfig() => new()
    {
        Url = "ldap://127.0.0.1:9",
        StartTls = true,
        CaCertificatePem = MatrixCa.Value,
        UserDnTemplate = "uid={{username}},ou=people,dc=matrix",
        GroupBaseDn = "ou=groups,dc=matrix",
    };

    /// <summary>A person: a userpass user (no policies) and a token from their login.</summary>
    private static async Task<(string Name, string Token)> SeedPersonAsync(TestVault v)
    {
        var name = await SeedUserAsync(v);
        var login = await new UserpassService.UserpassServiceClient(v.Channel).LoginAsync(new UserpassLoginRequest { Username = name, Password = MatrixPassword });
        return (name, login.Token);
    }

    private static Task<string> MfaStateAsync(TestVault v, string name) =>
        Describe(async () => await new MfaService.MfaServiceClient(v.Channel).GetMfaAsync(new GetMfaRequest { Entity = name }, v.As()));

    private static async Task<string> SeedEntityAsync(TestVault v)
    {
        var name = UniqueName();
        await new IdentityService.IdentityServiceClient(v.Channel).PutEntityAsync(new PutEntityRequest { Entity = new Entity { Name = name } }, v.As());
        return name;
    }

    private static async Task<string> SeedGroupAsync(TestVault v)
    {
        var name = UniqueName();
        var member = await SeedEntityAsync(v);
        await new IdentityService.IdentityServiceClient(v.Channel).PutGroupAsync(new PutGroupRequest { Group = new Group { Name = name, Members = { member } } }, v.As());
        return name;
    }

    // Includes the lockout counters: a refused unlock leaves the failed login counted.
    private static Task<string> UserStateAsync(TestVault v, string name) =>
        Describe(async () => await new UserpassService.UserpassServiceClient(v.Channel).GetUserAsync(new GetUserRequest { Name = name }, v.As()));

    private static Task<string> EntityStateAsync(TestVault v, string name) =>
        Describe(async () => await new IdentityService.IdentityServiceClient(v.Channel).GetEntityAsync(new GetEntityRequest { Name = name }, v.As()));

    private static Task<string> GroupStateAsync(TestVault v, string name) =>
        Describe(async () => await new IdentityService.IdentityServiceClient(v.Channel).GetGroupAsync(new GetGroupRequest { Name = name }, v.As()));

    private static async Task<string> SeedAdminSecretAsync(TestVault v)
    {
        var path = UniquePath();
        await v.Kv.PutAsync(new PutSecretRequest { Path = path, Data = { ["username"] = "matrix_admin", ["password"] = "matrix-admin-password" } }, v.As());
        return path;
    }

    /// <summary>A postgres target on a loopback port nothing listens on: registrable, never reachable.</summary>
    public static Target TargetNamed(string name, string adminSecret) => new()
    {
        Name = name,
        Kind = "postgres",
        Connection = new TargetConnection { Host = "127.0.0.1", Port = 9, Database = "matrix" },
        Account = "matrix_account",
        AdminSecret = adminSecret,
    };

    private static async Task<(string Name, string AdminSecret)> SeedTargetAsync(TestVault v)
    {
        var admin = await SeedAdminSecretAsync(v);
        var name = UniqueName();
        await new TargetService.TargetServiceClient(v.Channel).PutTargetAsync(
            new PutTargetRequest { Target = TargetNamed(name, admin), CurrentPassword = "matrix-current-1", SkipVerification = true }, v.As());
        return (name, admin);
    }

    /// <summary>One private PostgreSQL for the rows that make real users; stopped by its watchdog when the test process ends.</summary>
    private static readonly Lazy<Task<PostgresServer>> Postgres = new(() => PostgresServer.StartAsync());

    private static async Task<(string Name, string Target, string Admin)> SeedDynamicRoleAsync(TestVault v, bool realDatabase = false)
    {
        string target;
        string admin;
        if (realDatabase)
        {
            var pg = await Postgres.Value;
            admin = UniquePath();
            await v.Kv.PutAsync(new PutSecretRequest { Path = admin, Data = { ["username"] = pg.SuperUser, ["password"] = pg.SuperPassword } }, v.As());
            target = UniqueName();
            var account = await pg.CreateLoginRoleAsync("matrix-Account-1", "matrix");
            await new TargetService.TargetServiceClient(v.Channel).PutTargetAsync(new PutTargetRequest
            {
                Target = new Target { Name = target, Kind = "postgres", Connection = new TargetConnection { Host = pg.Host, Port = (uint)pg.Port, Database = pg.Database }, Account = account, AdminSecret = admin },
                CurrentPassword = "matrix-Account-1",
            }, v.As());
        }
        else
        {
            (target, admin) = await SeedTargetAsync(v);
        }
        var name = UniqueName();
        await new LeaseService.LeaseServiceClient(v.Channel).PutDynamicRoleAsync(new PutDynamicRoleRequest { Role = new DynamicRole { Name = name, Target = target } }, v.As());
        return (name, target, admin);
    }

    /// <summary>A lease held by a token of its own (its holder may act on it without policy; the matrix's callers are not its holder).</summary>
    private static async Task<string> SeedLeaseAsync(TestVault v)
    {
        var (role, _, _) = await SeedDynamicRoleAsync(v, realDatabase: true);
        var policy = UniqueName();
        await v.Policies.PutAsync(new PutPolicyRequest { Policy = PolicyNamed(policy, $"lease/creds/{role}", "read") }, v.As());
        var holder = await v.Tokens.CreateAsync(new CreateTokenRequest { Policies = { policy }, Ttl = Duration.FromTimeSpan(TimeSpan.FromHours(1)) }, v.As());
        var issued = await new LeaseService.LeaseServiceClient(v.Channel).IssueCredentialAsync(new IssueCredentialRequest { Role = role }, v.As(holder.Token));
        return issued.Lease.Id;
    }

    /// <summary>A set of one account on a target with a known password (checking it out needs no database).</summary>
    private static async Task<(string Name, string Target)> SeedCheckoutSetAsync(TestVault v)
    {
        var (target, _) = await SeedTargetAsync(v);
        var name = UniqueName();
        await new LeaseService.LeaseServiceClient(v.Channel).PutCheckoutSetAsync(new PutCheckoutSetRequest { Set = new CheckoutSet { Name = name, Targets = { target } } }, v.As());
        return (name, target);
    }

    private static Task<string> CheckoutSetStateAsync(TestVault v, string name) =>
        Describe(async () => await new LeaseService.LeaseServiceClient(v.Channel).GetCheckoutSetAsync(new GetCheckoutSetRequest { Name = name }, v.As()));

    private static Task<string> DynamicRoleStateAsync(TestVault v, string name) =>
        Describe(async () => await new LeaseService.LeaseServiceClient(v.Channel).GetDynamicRoleAsync(new GetDynamicRoleRequest { Name = name }, v.As()));

    // Expiry and issue times are left out: a renew that was refused must show no change.
    private static Task<string> LeaseStateAsync(TestVault v, string id) =>
        Describe(async () => await new LeaseService.LeaseServiceClient(v.Channel).LookupLeaseAsync(new LookupLeaseRequest { LeaseId = id }, v.As()));

    private static Task<string> LeaseListAsync(TestVault v, string prefix) =>
        Describe(async () => await new LeaseService.LeaseServiceClient(v.Channel).ListLeasesAsync(new ListLeasesRequest { Prefix = prefix }, v.As()));

    private static Task<string> TargetStateAsync(TestVault v, string name) =>
        Describe(async () => await new TargetService.TargetServiceClient(v.Channel).GetTargetAsync(new GetTargetRequest { Name = name }, v.As()));

    private static Task<string> TargetHistoryAsync(TestVault v, string name) =>
        Describe(async () => await new TargetService.TargetServiceClient(v.Channel).ListTargetHistoryAsync(new ListTargetHistoryRequest { Name = name }, v.As()));

    /// <summary>Whether the secret id still logs in (unlimited uses: each try leaves it as it was).</summary>
    private static async Task<string> SecretIdLoginStateAsync(TestVault v, string roleId, string secretId)
    {
        try
        {
            await new AppRoleService.AppRoleServiceClient(v.Channel).LoginAsync(new AppRoleLoginRequest { RoleId = roleId, SecretId = secretId });
            return "logs in";
        }
        catch (RpcException ex)
        {
            return ex.StatusCode.ToString();
        }
    }

    private static Task<string> RoleStateAsync(TestVault v, string name) =>
        Describe(async () => await new AppRoleService.AppRoleServiceClient(v.Channel).GetRoleAsync(new GetRoleRequest { Name = name }, v.As()));

    /// <summary>A live token other than the caller, with a harmless policy; returns its accessor.</summary>
    private static async Task<string> TargetTokenAsync(TestVault v)
    {
        var policy = await SeedPolicyAsync(v);
        var created = await v.Tokens.CreateAsync(new CreateTokenRequest { Policies = { policy }, Ttl = Duration.FromTimeSpan(TimeSpan.FromHours(1)) }, v.As());
        return created.Info.Accessor;
    }

    private static Task<string> MetadataAsync(TestVault v, string path) =>
        Describe(async () => await v.Kv.GetMetadataAsync(new GetMetadataRequest { Path = path }, v.As()));

    private static async Task<string> MetadataAndValueAsync(TestVault v, string path) =>
        await MetadataAsync(v, path) + " | " + await Describe(async () => await v.Kv.GetAsync(new GetSecretRequest { Path = path, Version = 1 }, v.As()));

    private static Task<string> TokenStateAsync(TestVault v, string accessor) =>
        Describe(async () => await v.Tokens.LookupAsync(new LookupTokenRequest { Accessor = accessor }, v.As()));

    private static Task<string> PolicyStateAsync(TestVault v, string name) =>
        Describe(async () => await v.Policies.GetAsync(new GetPolicyRequest { Name = name }, v.As()));

    private static async Task<string> SealStateAsync(TestVault v)
    {
        var status = await v.System.StatusAsync(new StatusRequest());
        return $"sealed={status.Sealed} key_version={status.KeyVersion}";
    }

    private static async Task<string> Describe(Func<Task<IMessage>> read)
    {
        try
        {
            return (await read()).ToString() ?? "";
        }
        catch (RpcException ex)
        {
            return $"status {ex.StatusCode}";
        }
    }
}
