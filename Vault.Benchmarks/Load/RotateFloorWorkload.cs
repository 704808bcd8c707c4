using System.Security.Cryptography;
using Npgsql;
using Vault.Benchmarks.Postgres;
using Vault.Rotators.Postgres;

namespace Vault.Benchmarks.Load;

/// <summary>
/// rotate-floor: the least a verified password rotation can cost, done here in the load
/// generator with no vault. Per call, client i sends one <c>ALTER ROLE … PASSWORD '&lt;SCRAM
/// verifier&gt;'</c> for its own role over its own open superuser session (the verifier is computed
/// as PostgresRotator computes it), then opens and closes one fresh unpooled login as that role
/// with the new password.
/// </summary>
internal sealed class RotateFloorWorkload : IWorkload, IAsyncDisposable
{
    // As the vault's default password policy: 32 letters, digits, '-' and '_'.
    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    private const int PasswordLength = 32;

    private readonly BenchmarkPostgres _postgres;
    private readonly string[] _roles;
    private readonly NpgsqlConnection[] _admins;

    private RotateFloorWorkload(BenchmarkPostgres postgres, string[] roles, NpgsqlConnection[] admins)
    {
        _postgres = postgres;
        _roles = roles;
        _admins = admins;
    }

    /// <summary>Makes one role and opens one admin session per client.</summary>
    public static async Task<RotateFloorWorkload> CreateAsync(BenchmarkPostgres postgres, int clients, CancellationToken cancellationToken)
    {
        var roles = await postgres.CreateRolesAsync(clients);
        var admins = new List<NpgsqlConnection>(clients);
        try
        {
            for (var i = 0; i < clients; i++)
            {
                admins.Add(await postgres.OpenAdminAsync(cancellationToken));
            }
        }
        catch
        {
            foreach (var admin in admins)
            {
                await admin.DisposeAsync();
            }
            throw;
        }
        return new RotateFloorWorkload(postgres, [.. roles.Select(r => r.Role)], [.. admins]);
    }

    public async Task CallAsync(int clientIndex, Random random, CancellationToken cancellationToken)
    {
        var role = _roles[clientIndex];
        var password = RandomNumberGenerator.GetString(Alphabet, PasswordLength);
        // Role names from the fixture are plain identifiers and the verifier is base64 and '$:',
        // so quoting is just the quotes.
        await using (var alter = new NpgsqlCommand($"ALTER ROLE \"{role}\" PASSWORD '{ScramVerifier.Create(password)}'", _admins[clientIndex]))
        {
            await alter.ExecuteNonQueryAsync(cancellationToken);
        }
        await using var dataSource = _postgres.DataSource(role, password);
        await using var login = await dataSource.OpenConnectionAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var admin in _admins)
        {
            await admin.DisposeAsync();
        }
    }
}
