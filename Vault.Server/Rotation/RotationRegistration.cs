using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Vault.Rotators;
using Vault.Server.Storage;

namespace Vault.Server.Rotation;

public static class RotationRegistration
{
    /// <summary>Rotation targets, the rotation engine and its schedule, the rotators, and the records they store.</summary>
    public static IServiceCollection AddVaultRotation(this IServiceCollection services)
    {
        services.AddOptions<RotationOptions>().ValidateDataAnnotations()
            .Validate(o => TargetTrust.IsUsable(o.TargetCaFile), "Vault:Rotation:TargetCaFile must name a readable PEM file holding at least one certificate")
            .ValidateOnStart();
        services.AddSingleton<TargetTrust>();
        services.AddVaultRotators();
        services.AddSingleton(sp =>
        {
            var store = sp.GetRequiredService<Storage.IVaultStore>();
            var repository = ActivatorUtilities.CreateInstance<TargetRepository>(sp, store);
            store.ChangedElsewhere += repository.OnChangedElsewhere;
            return repository;
        });
        services.AddSingleton<AdminCredentialReader>();
        services.AddSingleton<TargetSpecValidator>();
        services.AddSingleton<TargetManager>();
        services.AddSingleton<RotationEngine>();
        services.TryAddSingleton<IRotationStepObserver, HaltingStepObserver>();
        services.AddSingleton<RotationScheduler>();
        services.AddHostedService(sp => sp.GetRequiredService<RotationScheduler>());
        return services.AddStoredDocuments(typeof(TargetRecord), typeof(RotationEventRecord));
    }
}
