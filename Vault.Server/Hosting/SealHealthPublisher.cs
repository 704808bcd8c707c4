using Grpc.Health.V1;
using Grpc.HealthCheck;
using Microsoft.Extensions.Hosting;
using Vault.Server.Audit;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Hosting;

/// <summary>Keeps the standard gRPC health service in step: NOT_SERVING while sealed, while the audit log fails, or while the store refuses writes (a full disk).</summary>
public sealed class SealHealthPublisher(SecurityBarrier barrier, AuditLog audit, IVaultStore store, HealthServiceImpl health) : IHostedService
{
    private static readonly string[] Services = ["", "vault.v1.KvService", "vault.v1.TokenService", "vault.v1.PolicyService", "vault.v1.SystemService", "vault.v1.AuditService", "vault.v1.AppRoleService"];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        barrier.SealStateChanged += Publish;
        audit.FailingChanged += Publish;
        store.FailingChanged += Publish;
        Publish(barrier.IsSealed);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        barrier.SealStateChanged -= Publish;
        audit.FailingChanged -= Publish;
        store.FailingChanged -= Publish;
        return Task.CompletedTask;
    }

    private void Publish(bool _)
    {
        var status = barrier.IsSealed || audit.Failure is not null || store.Failure is not null ? HealthCheckResponse.Types.ServingStatus.NotServing : HealthCheckResponse.Types.ServingStatus.Serving;
        foreach (var service in Services)
        {
            health.SetStatus(service, status);
        }
    }
}
