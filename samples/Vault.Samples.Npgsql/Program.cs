using System.Runtime.InteropServices;
using Npgsql;
using Vault.Client;
using Vault.Client.Credentials;
using Vault.Client.Npgsql;

// Ctrl+C (SIGINT) and SIGTERM (docker stop, systemd) end the loop instead of killing the process,
// so the `await using` below runs: the lease is revoked and its database user dropped at once,
// not left alive until its TTL runs out.
using var stop = new CancellationTokenSource();
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);

using var vault = new VaultClient(new VaultClientOptions
{
    Address = Environment.GetEnvironmentVariable("VAULT_ADDR") ?? "http://127.0.0.1:8200",
    RoleId = Environment.GetEnvironmentVariable("VAULT_ROLE_ID"),     // AppRole: the client logs in
    SecretId = Environment.GetEnvironmentVariable("VAULT_SECRET_ID"), // and keeps its token renewed
});

// A PostgreSQL user of its own under a lease: renewed in the background, replaced by a new
// user before the lease's max TTL, revoked (the user dropped) when the data source is disposed.
var connectionString = Environment.GetEnvironmentVariable("BILLING_DB") ?? "Host=127.0.0.1;Database=postgres;Connection Lifetime=300";
await using var db = await new NpgsqlDataSourceBuilder(connectionString)
    .BuildVaultDataSourceAsync(vault, VaultCredentialSource.DynamicRole("billing-app"), cancellationToken: stop.Token);

try
{
    while (true)
    {
        await using var command = db.CreateCommand("SELECT current_user, now()");
        await using var reader = await command.ExecuteReaderAsync(stop.Token);
        await reader.ReadAsync(stop.Token);
        Console.WriteLine($"{reader.GetDateTime(1):T} connected as {reader.GetString(0)}");
        await Task.Delay(TimeSpan.FromSeconds(5), stop.Token);
    }
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    Console.WriteLine("stopping: revoking the lease");
}

void Stop(PosixSignalContext signal)
{
    signal.Cancel = true;
    stop.Cancel();
}
