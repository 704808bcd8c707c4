using System.Globalization;
using Npgsql;
using Vault.Benchmarks.Hosting;
using Vault.Protocol.V1;
using Vault.Testing.Servers;

namespace Vault.Benchmarks.Postgres;

/// <summary>
/// The run's one PostgreSQL 15, started through the rotation tests' fixture (linked, not copied;
/// as root it runs as <c>postgres</c>): the system that rotate, rotate-floor and lease-checkout
/// act on, and what they need of it — login roles, rotation targets registered in a vault, and
/// connections opened the way PostgresRotator opens them.
/// </summary>
internal sealed class BenchmarkPostgres : IAsyncDisposable
{
    /// <summary>KV path of the admin credential the vault's targets use.</summary>
    public const string AdminSecretPath = "bench/admin/postgres";

    private const int DefaultMaxConnections = 100;

    private readonly PostgresServer _server;
    private NpgsqlDataSource? _admin;

    private BenchmarkPostgres(PostgresServer server) => _server = server;

    public int MaxConnections { get; private set; } = DefaultMaxConnections;

    /// <summary>Starts the server; raises <c>max_connections</c> (restarting it) if <paramref name="maxClients"/> clients could need more than the default 100.</summary>
    public static async Task<BenchmarkPostgres> StartAsync(int maxClients, CancellationToken cancellationToken)
    {
        var server = await PostgresServer.StartAsync(cancellationToken);
        var postgres = new BenchmarkPostgres(server);
        try
        {
            // rotate-floor holds an admin session per client and opens a login beside it (the
            // vault needs fewer: a small pool of admin sessions and one login per rotation).
            // Leave room for that, plus setup.
            var needed = (2 * maxClients) + 20;
            if (needed > DefaultMaxConnections)
            {
                await server.ExecuteAsync($"ALTER SYSTEM SET max_connections = {needed.ToString(CultureInfo.InvariantCulture)}");
                await server.RestartAsync();
                postgres.MaxConnections = needed;
            }
            return postgres;
        }
        catch
        {
            await postgres.DisposeAsync();
            throw;
        }
    }

    /// <summary>Where targets point: the server's host, port and database, no options (so TLS is verified, <c>verify-full</c> against the run's CA, which the benchmark vault trusts, with channel binding, as for any target without <c>ssl_mode</c>).</summary>
    public TargetConnection TargetConnection => new() { Host = _server.Host, Port = (uint)_server.Port, Database = _server.Database };

    /// <summary>Creates <paramref name="count"/> login roles, each with its own random password.</summary>
    public async Task<IReadOnlyList<(string Role, string Password)>> CreateRolesAsync(int count)
    {
        var roles = new List<(string, string)>(count);
        for (var i = 0; i < count; i++)
        {
            var password = ServerHost.NewPassword();
            roles.Add((await _server.CreateLoginRoleAsync(password, "bench"), password));
        }
        return roles;
    }

    /// <summary>
    /// Stores the superuser as the admin secret and registers one single-user target per role,
    /// with its current password (no rotation at registration). Uses the root token.
    /// </summary>
    public async Task<IReadOnlyList<string>> RegisterTargetsAsync(BenchmarkVault vault, string prefix, IReadOnlyList<(string Role, string Password)> roles, CancellationToken cancellationToken)
    {
        var kv = new KvService.KvServiceClient(vault.SetupChannel);
        await kv.PutAsync(
            new PutSecretRequest { Path = AdminSecretPath, Data = { ["username"] = _server.SuperUser, ["password"] = _server.SuperPassword } },
            vault.RootHeaders,
            cancellationToken: cancellationToken);
        var targets = new TargetService.TargetServiceClient(vault.SetupChannel);
        var names = new List<string>(roles.Count);
        foreach (var (role, password) in roles)
        {
            var name = $"{prefix}-{names.Count:D4}";
            await targets.PutTargetAsync(
                new PutTargetRequest
                {
                    Target = new Target
                    {
                        Name = name,
                        Kind = "postgres",
                        Connection = TargetConnection,
                        Account = role,
                        AdminSecret = AdminSecretPath,
                        Strategy = RotationStrategy.SingleUser,
                    },
                    CurrentPassword = password,
                },
                vault.RootHeaders,
                cancellationToken: cancellationToken);
            names.Add(name);
        }
        return names;
    }

    /// <summary>
    /// A new database for a vault's records (Vault:StorageKind=postgres) and a file holding the
    /// connection string to it, over loopback as the superuser — on a second server of its own that
    /// fsyncs its commits (the targets' server does not), so that kv-put-pg is as durable as kv-put.
    /// </summary>
    public async Task<string> CreateStorageAsync(string runDirectory, CancellationToken cancellationToken)
    {
        _storage ??= await PostgresServer.StartDurableAsync(cancellationToken);
        var database = $"vault_bench_{Guid.NewGuid():N}";
        await _storage.ExecuteAsync($"CREATE DATABASE {database}");
        var file = Path.Combine(runDirectory, $"{database}.connection");
        var connection = new NpgsqlConnectionStringBuilder(_storage.ConnectionString(_storage.SuperUser, _storage.SuperPassword, database)) { Pooling = true };
        await File.WriteAllTextAsync(file, connection.ConnectionString, cancellationToken);
        return file;
    }

    private PostgresServer? _storage;

    /// <summary>A superuser session kept open by its caller, for rotate-floor's ALTER ROLE.</summary>
    public async Task<NpgsqlConnection> OpenAdminAsync(CancellationToken cancellationToken)
    {
        _admin ??= DataSource(_server.SuperUser, _server.SuperPassword);
        return await _admin.OpenConnectionAsync(cancellationToken);
    }

    /// <summary>
    /// A data source built as PostgresRotator builds the one for a login that proves a password:
    /// no pooling (a changed password is always tried afresh), no type loading, TLS with the
    /// certificate checked against the run's CA and the host name (<c>verify-full</c>), channel binding.
    /// </summary>
    public NpgsqlDataSource DataSource(string user, string password)
    {
        var connectionString = new NpgsqlConnectionStringBuilder
        {
            Host = _server.Host,
            Port = _server.Port,
            Database = _server.Database,
            Username = user,
            Password = password,
            Pooling = false,
            Enlist = false,
            Timeout = 10,
            SslMode = SslMode.Require,
            ChannelBinding = ChannelBinding.Require,
        }.ConnectionString;
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        builder.ConfigureTypeLoading(typeLoading => typeLoading.EnableTypeLoading(false));
        var check = Vault.Rotators.Tls.CertificateCheck.For(
            new Vault.Rotators.TargetConnection(_server.Host, _server.Port, _server.Database, new Dictionary<string, string>()) { CaCertificates = TestCertificates.Run.CaPem }, checkName: true);
        builder.UseSslClientAuthenticationOptionsCallback(options => options.RemoteCertificateValidationCallback = check.Validate);
        return builder.Build();
    }

    public async ValueTask DisposeAsync()
    {
        if (_admin is not null)
        {
            await _admin.DisposeAsync();
        }
        if (_storage is not null)
        {
            await _storage.DisposeAsync();
        }
        await _server.DisposeAsync();
    }
}
