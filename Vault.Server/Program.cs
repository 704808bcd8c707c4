using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;
using Vault.Server;
using Vault.Server.Audit;
using Vault.Server.Hosting;
using Vault.Server.Storage;

if (args is ["audit", .. var auditArgs])
{
    // Offline: a stopped vault's data directory, checked without building a host.
    return await OfflineAuditVerify.RunAsync(auditArgs, CancellationToken.None);
}

if (args is ["backup", .. var backupArgs])
{
    return await Vault.Server.Backup.OfflineBackup.RunAsync(backupArgs, restore: false, CancellationToken.None);
}

if (args is ["restore", .. var restoreArgs])
{
    return await Vault.Server.Backup.OfflineBackup.RunAsync(restoreArgs, restore: true, CancellationToken.None);
}

if (args is ["migrate", .. var migrateArgs])
{
    return await Vault.Server.Backup.OfflineMigrate.RunAsync(migrateArgs, CancellationToken.None);
}

string? devDataDir = null;
try
{
    await using (var app = VaultServerHost.Build(args))
    {
        var options = app.Services.GetRequiredService<IOptions<VaultServerOptions>>().Value;
        devDataDir = options.DataDirIsTemporary ? options.DataDir : null;
        try
        {
            await app.RunAsync();
        }
        catch (IOException ex) when (ex.InnerException is AddressInUseException)
        {
            // Taken after the check in Build, before Kestrel bound it.
            throw new ValidationException("listen", $"address {options.Listen} is already in use");
        }
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
catch (Exception ex) when (DiskFull(ex) is { } reason)
{
    // Out of space before serving (the reserve, the data file, the log): one line, not a trace.
    await Console.Error.WriteLineAsync($"vault: {reason}");
    return 1;
}
finally
{
    if (devDataDir is not null && Directory.Exists(devDataDir))
    {
        // Dev mode's data lives only as long as the process, however it ends.
        Directory.Delete(devDataDir, recursive: true);
    }
}

/// <summary>Why start-up failed, if it was for want of disk space (anywhere in the exception's causes).</summary>
static string? DiskFull(Exception? error) => error switch
{
    null => null,
    DiskFullException full => full.Message,
    IOException io when DiskReserve.IsDiskFull(io) => $"disk full: {io.Message}",
    AggregateException all => all.InnerExceptions.Select(DiskFull).FirstOrDefault(r => r is not null),
    _ => DiskFull(error.InnerException),
};
