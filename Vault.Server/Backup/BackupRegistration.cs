using Microsoft.Extensions.DependencyInjection;

namespace Vault.Server.Backup;

public static class BackupRegistration
{
    /// <summary>Online backups (<see cref="BackupService"/>); verifying and restoring one is offline, in the server binary.</summary>
    public static IServiceCollection AddVaultBackup(this IServiceCollection services)
    {
        services.AddSingleton<BackupService>();
        return services;
    }
}
