using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Vault.Rotators;

/// <summary>The rotators known to this process, by kind.</summary>
public sealed class RotatorRegistry(IEnumerable<ICredentialRotator> rotators)
{
    private readonly Dictionary<string, ICredentialRotator> _byKind = rotators.ToDictionary(r => r.Kind, StringComparer.Ordinal);

    /// <summary>Registered kinds, sorted.</summary>
    public IReadOnlyList<string> Kinds => [.. _byKind.Keys.Order(StringComparer.Ordinal)];

    public bool TryGet(string kind, out ICredentialRotator rotator) => _byKind.TryGetValue(kind, out rotator!);

    /// <exception cref="KeyNotFoundException">No rotator is registered under <paramref name="kind"/>.</exception>
    public ICredentialRotator Get(string kind) =>
        _byKind.TryGetValue(kind, out var rotator) ? rotator : throw new KeyNotFoundException($"no rotator for kind '{kind}'");
}

/// <summary>The one registration entry of this project.</summary>
public static class RotatorServiceCollectionExtensions
{
    /// <summary>Registers the PostgreSQL, MySQL/MariaDB and LDAP rotators, the registry and the password generator.</summary>
    public static IServiceCollection AddVaultRotators(this IServiceCollection services)
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ICredentialRotator, Postgres.PostgresRotator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ICredentialRotator, MySql.MySqlRotator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ICredentialRotator, Ldap.LdapRotator>());
        services.TryAddSingleton<RotatorRegistry>();
        return services;
    }
}
