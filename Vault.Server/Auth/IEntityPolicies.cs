namespace Vault.Server.Auth;

/// <summary>
/// The policies a token holds through the person it acts for: its entity's and its groups', as
/// they are now. Identity/ answers it; tokens only name the entity.
/// </summary>
public interface IEntityPolicies
{
    /// <exception cref="UnauthenticatedException">The entity was deleted (or deleted and created again: another id) or is disabled.</exception>
    IReadOnlyList<string> PoliciesOf(string entity, string entityId, IReadOnlyList<string> externalGroups);

    /// <summary>Whether the entity still exists with that id and is not disabled: a token acting for it lives only so long (its leases with it).</summary>
    bool IsActive(string entity, string entityId);
}
