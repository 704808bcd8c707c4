using Microsoft.Extensions.DependencyInjection;

namespace Vault.Server.Grpc;

public static class GrpcRegistration
{
    /// <summary>The vault.v1 services' plumbing: the interceptor every call passes, its access table, reflection.</summary>
    public static IServiceCollection AddVaultGrpc(this IServiceCollection services)
    {
        services.AddSingleton<AccessRules>();
        services.AddSingleton<VaultInterceptor>();
        services.AddGrpc(grpc =>
        {
            // Outermost: it sees the status the vault's interceptor answers with.
            grpc.Interceptors.Add<Telemetry.MetricsInterceptor>();
            grpc.Interceptors.Add<VaultInterceptor>();
            grpc.EnableDetailedErrors = false;
        });
        services.AddGrpcReflection();
        return services;
    }
}
