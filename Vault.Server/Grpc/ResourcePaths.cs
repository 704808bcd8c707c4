using Vault.Server.Auth;
using Vault.Server.Leases;
using Vault.Server.Secrets;

namespace Vault.Server.Grpc;

/// <summary>
/// Every resource path a policy names, built in one place. Each takes the name as the request
/// carries it and validates it (INVALID_ARGUMENT naming <c>field</c>) before it becomes part of a
/// path, so no path is made of an unchecked name.
/// </summary>
public static class ResourcePaths
{
    public static string Kv(string? path, string field = "path") => $"kv/{WithField(() => SecretValidation.Path(path!), field)}";

    public static string KvPrefix(string? prefix) => $"kv/{SecretValidation.Prefix(prefix!)}";

    public static string Policy(string? name, string field = "name") => $"sys/policy/{PolicyStore.ValidateName(name, field)}";

    public const string Policies = "sys/policy";

    public static string AppRole(string? name, string field = "name") => $"auth/approle/role/{PolicyStore.ValidateName(name, field)}";

    public const string AppRoles = "auth/approle/role";

    public static string UserpassUser(string? name, string field = "name") => $"auth/userpass/user/{PolicyStore.ValidateName(name, field)}";

    public const string UserpassUsers = "auth/userpass/user";

    /// <summary>
    /// What a person's login is audited as (no policy names it: it needs no token). Not the
    /// username: a password typed into that field would be kept in plaintext. The entry names the
    /// user's entity instead, when there is such a user.
    /// </summary>
    public const string UserpassLogin = "auth/userpass/login";

    /// <summary>What a person's directory login is audited as, like <see cref="UserpassLogin"/>.</summary>
    public const string LdapLogin = "auth/ldap/login";

    /// <summary>What a person's change of their own password is audited as, like <see cref="UserpassLogin"/>.</summary>
    public const string UserpassPasswordChange = "auth/userpass/password";

    public static string Entity(string? name, string field = "name") => $"identity/entity/{PolicyStore.ValidateName(name, field)}";

    public const string Entities = "identity/entity";

    public static string Group(string? name, string field = "name") => $"identity/group/{PolicyStore.ValidateName(name, field)}";

    public const string Groups = "identity/group";

    public static string Grant(string? name, string field = "name") => $"access/grant/{PolicyStore.ValidateName(name, field)}";

    public const string Grants = "access/grant";

    /// <summary>An access request's path: its id is checked first (ar_ and 24 hex digits), so nothing else becomes part of a path.</summary>
    public static string AccessRequest(string? id) => $"access/request/{Identity.AccessRequests.ValidateId(id)}";

    public const string AccessRequests = "access/request";

    public static string TokenAccessor(string accessor) => $"auth/token/accessors/{TokenManager.ValidateAccessor(accessor)}";

    public static string Target(string? name, string field = "name") => $"rotation/target/{PolicyStore.ValidateName(name, field)}";

    /// <summary>The target's current password: reading it, or anything that hands it out or sends it elsewhere.</summary>
    public static string TargetCredential(string? name, string field = "name") => $"{Target(name, field)}/credential";

    public const string Targets = "rotation/target";

    public static string DynamicRole(string? name, string field = "name") => $"lease/role/{PolicyStore.ValidateName(name, field)}";

    public const string DynamicRoles = "lease/role";

    public static string DynamicCredentials(string? role, string field = "role") => $"lease/creds/{PolicyStore.ValidateName(role, field)}";

    public static string Lease(string leaseId) => $"lease/id/{leaseId}";

    public static string LeasePrefix(string? prefix) => $"lease/id/{LeaseStore.ValidatePrefix(prefix!)}";

    public static string CheckoutSet(string? name, string field = "name") => $"lease/set/{PolicyStore.ValidateName(name, field)}";

    public const string CheckoutSets = "lease/set";

    private static string WithField(Func<string> validate, string field)
    {
        try
        {
            return validate();
        }
        catch (ValidationException ex) when (ex.Field != field)
        {
            throw new ValidationException(field, ex.Message);
        }
    }
}
