using Microsoft.Extensions.Options;
using Vault.Server;
using Vault.Server.Hosting;

try
{
    string? devDataDir = null;
    await using (var app = VaultServerHost.Build(args))
    {
        var options = app.Services.GetRequiredService<IOptions<VaultServerOptions>>().Value;
        devDataDir = options.DataDirIsTemporary ? options.DataDir : null;
        await app.RunAsync();
    }
    if (devDataDir is not null && Directory.Exists(devDataDir))
    {
        // Dev mode's data lives only as long as the process.
        Directory.Delete(devDataDir, recursive: true);
    }
    return 0;
}
catch (ValidationException ex)
{
    await Console.Error.WriteLineAsync($"vault: {ex.Message}");
    return 2;
}
catch (OptionsValidationException ex)
{
    await Console.Error.WriteLineAsync($"vault: invalid configuration: {ex.Message}");
    return 2;
}
