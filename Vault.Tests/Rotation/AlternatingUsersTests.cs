using Npgsql;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Rotation;

/// <summary>Two accounts, one current: a client that keeps reading the current credential never holds a dead one.</summary>
public sealed class AlternatingUsersTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    [Fact]
    public async Task ClientReadingTheCurrentCredentialInALoop_SeesNoLoginFailure_WhileTenRotationsRun()
    {
        var pg = systems.PostgresServer;
        await using var vault = await TestVault.StartInitializedAsync();
        var targets = vault.Targets();
        var initial = $"Initial-{Guid.NewGuid():N}";
        var first = await systems.Postgres.CreateAccountAsync(initial);
        var second = await systems.Postgres.CreateAccountAsync($"Other-{Guid.NewGuid():N}");
        var admin = await RotationKit.PutAdminSecretAsync(vault.Kv, vault.As(), systems.Postgres);
        var name = RotationKit.UniqueName("alt");
        var target = RotationKit.Describe(systems.Postgres, name, first, admin);
        target.SecondAccount = second;
        target.Strategy = RotationStrategy.AlternatingUsers;
        await targets.PutTargetAsync(new PutTargetRequest { Target = target, CurrentPassword = initial }, vault.As());

        using var stop = new CancellationTokenSource();
        var failures = new List<string>();
        var logins = 0;
        var accountsSeen = new HashSet<string>(StringComparer.Ordinal);
        var client = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var credential = await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, vault.As());
                accountsSeen.Add(credential.Username);
                try
                {
                    await using var connection = new NpgsqlConnection(pg.ConnectionString(credential.Username, credential.Password));
                    await connection.OpenAsync();
                    await using var command = new NpgsqlCommand("SELECT 1", connection);
                    await command.ExecuteScalarAsync();
                    Interlocked.Increment(ref logins);
                }
                catch (Exception ex) when (ex is NpgsqlException or PostgresException)
                {
                    lock (failures)
                    {
                        failures.Add($"{credential.Username} v{credential.Version}: {ex.Message}");
                    }
                }
                await Task.Delay(Client.NpgsqlApp.PauseBetweenQueries);
            }
        });

        for (var i = 0; i < 10; i++)
        {
            var result = await targets.RotateTargetAsync(new RotateTargetRequest { Name = name }, vault.As());
            Assert.True(result.Event.Outcome == RotationOutcome.Succeeded, $"rotation {i + 1}: {result.Event.Step}: {result.Event.Reason}");
        }
        await stop.CancelAsync();
        await client;

        Assert.True(failures.Count == 0, $"{failures.Count} login failures: {string.Join("; ", failures.Take(5))}");
        Assert.True(logins > 20, $"only {logins} logins happened during the rotations");
        Assert.Equal(new HashSet<string> { first, second }, accountsSeen);
        var final = await targets.GetTargetAsync(new GetTargetRequest { Name = name }, vault.As());
        Assert.Equal(10UL, final.Status.Version);
        var history = await RotationKit.HistoryAsync(targets, vault.As(), name);
        Assert.Equal(5, history.Count(e => e.Outcome == RotationOutcome.Succeeded && e.Account == first));
        Assert.Equal(5, history.Count(e => e.Outcome == RotationOutcome.Succeeded && e.Account == second));
    }
}
