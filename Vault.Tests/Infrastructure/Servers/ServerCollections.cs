namespace Vault.Tests.Infrastructure.Servers;

// The collection markers live together: each is one line, and they are one decision
// (one shared server of each kind per test run).

/// <summary><c>[Collection("postgres")]</c>: the test class gets the run's shared <see cref="PostgresServer"/> in its constructor.</summary>
[CollectionDefinition("postgres")]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>;

/// <summary><c>[Collection("mariadb")]</c>: the test class gets the run's shared <see cref="MariaDbServer"/> in its constructor.</summary>
[CollectionDefinition("mariadb")]
public sealed class MariaDbCollection : ICollectionFixture<MariaDbServer>;

/// <summary><c>[Collection("ldap")]</c>: the test class gets the run's shared <see cref="LdapServer"/> in its constructor.</summary>
[CollectionDefinition("ldap")]
public sealed class LdapCollection : ICollectionFixture<LdapServer>;
