using Npgsql;
using Vault.Testing.Servers;

namespace Vault.Tests.Storage.Postgres;

/// <summary>A database of one test's own on the tests' PostgreSQL, as the superuser; dropped (sessions and all) when disposed.</summary>
internal sealed class ScratchDatabase : IAsyncDisposable
{
    private readonly PostgresServer _server;
    private readonly string _name;

    private ScratchDatabase(PostgresServer server, string name)
    {
        _server = server;
        _name = name;
        Data = NpgsqlDataSource.Create(server.ConnectionString(server.SuperUser, server.SuperPassword, name));
    }

    public NpgsqlDataSource Data { get; }

    public static async Task<ScratchDatabase> CreateAsync(PostgresServer server, string prefix)
    {
        var name = $"{prefix}_{Guid.NewGuid():N}";
        await server.ExecuteAsync($"CREATE DATABASE {name}");
        return new ScratchDatabase(server, name);
    }

    public async ValueTask DisposeAsync()
    {
        await Data.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await _server.ExecuteAsync($"DROP DATABASE IF EXISTS {_name} WITH (FORCE)");
    }
}
