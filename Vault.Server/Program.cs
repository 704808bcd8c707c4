using Vault.Server;
using Vault.Server.Hosting;

try
{
    await using var app = VaultServerHost.Build(args);
    await app.RunAsync();
    return 0;
}
catch (ValidationException ex)
{
    await Console.Error.WriteLineAsync($"vault: {ex.Message}");
    return 2;
}
