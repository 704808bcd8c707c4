using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Rotation;

internal sealed class PostgresSystem(PostgresServer server) : ITargetSystem
{
    public string Kind => "postgres";
    public (string Username, string Password) Admin => (server.SuperUser, server.SuperPassword);
    public Task<string> CreateAccountAsync(string password) => server.CreateLoginRoleAsync(password);
    public Task<bool> CanLoginAsync(string account, string password) => server.CanLoginAsync(account, password);
    public TargetConnection Connection => new() { Host = server.Host, Port = (uint)server.Port, Database = server.Database };
}

internal sealed class MariaDbSystem(MariaDbServer server) : ITargetSystem
{
    public string Kind => "mysql";
    public (string Username, string Password) Admin => (server.SuperUser, server.SuperPassword);
    public Task<string> CreateAccountAsync(string password) => server.CreateLoginUserAsync(password);
    public Task<bool> CanLoginAsync(string account, string password) => server.CanLoginAsync(account, password);
    public TargetConnection Connection => new() { Host = server.Host, Port = (uint)server.Port };
}

internal sealed class LdapSystem(LdapServer server) : ITargetSystem
{
    public string Kind => "ldap";
    public (string Username, string Password) Admin => (server.AdminDn, server.AdminPassword);
    public Task<string> CreateAccountAsync(string password) => server.CreateUserAsync(password);
    public Task<bool> CanLoginAsync(string account, string password) => server.CanBindAsync(account, password);
    public TargetConnection Connection => new() { Host = server.Host, Port = (uint)server.Port, Database = server.BaseDn };
}

/// <summary>
/// Private PostgreSQL, MariaDB and slapd instances, started together once per test run for every
/// class that takes them as a class fixture: those classes run in parallel with each other (each
/// test makes its own accounts, roles and users), not one after another in one collection. The
/// servers are not stopped by a fixture's disposal: each has a watchdog that stops it and
/// deletes its directory when the test process ends.
/// </summary>
public sealed class TargetSystems : IAsyncLifetime
{
    private static readonly Lazy<Task<(PostgresServer Postgres, MariaDbServer MariaDb, LdapServer Ldap)>> Shared = new(StartAsync);

    private PostgresServer? _postgres;
    private MariaDbServer? _mariadb;
    private LdapServer? _ldap;

    public PostgresServer PostgresServer => _postgres ?? throw new InvalidOperationException("not started");
    public MariaDbServer MariaDbServer => _mariadb ?? throw new InvalidOperationException("not started");
    public LdapServer LdapServer => _ldap ?? throw new InvalidOperationException("not started");

    public ITargetSystem Postgres => new PostgresSystem(PostgresServer);
    public ITargetSystem MariaDb => new MariaDbSystem(MariaDbServer);
    public ITargetSystem Ldap => new LdapSystem(LdapServer);

    public ITargetSystem Get(string kind) => kind switch
    {
        "postgres" => Postgres,
        "mysql" => MariaDb,
        "ldap" => Ldap,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "no such target system"),
    };

    public async Task InitializeAsync() => (_postgres, _mariadb, _ldap) = await Shared.Value;

    public Task DisposeAsync() => Task.CompletedTask;

    private static async Task<(PostgresServer, MariaDbServer, LdapServer)> StartAsync()
    {
        var pg = PostgresServer.StartAsync();
        var maria = MariaDbServer.StartAsync();
        var ldap = LdapServer.StartAsync();
        try
        {
            return (await pg, await maria, await ldap);
        }
        catch
        {
            foreach (var started in new Task<IAsyncDisposable>[] { AsDisposable(pg), AsDisposable(maria), AsDisposable(ldap) })
            {
                if (started.IsCompletedSuccessfully)
                {
                    await started.Result.DisposeAsync();
                }
            }
            throw;
        }
    }

    private static async Task<IAsyncDisposable> AsDisposable<T>(Task<T> task)
        where T : IAsyncDisposable => await task;
}
