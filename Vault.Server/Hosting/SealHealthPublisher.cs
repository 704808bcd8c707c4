using Grpc.Health.V1;
using Grpc.HealthCheck;
using Microsoft.Extensions.Hosting;
using Vault.Server.Crypto;

namespace Vault.Server.Hosting;

/// <summary>Keeps the standard gRPC health service in step with the seal: NOT_SERVING while sealed.</summary>
public sealed class SealHealthPublisher(SecurityBarrier barrier, HealthServiceImpl health) : IHostedService
{
    private static readonly string[] Services = ["", "vault.v1.KvService", "vault.v1.TokenService", "vault.v1.PolicyService", "vault.v1.SystemService"];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        barrier.SealStateChanged += Publish;
        Publish(barrier.IsSealed);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        barrier.SealStateChanged -= Publish;
        return Task.CompletedTask;
    }

    private void Publish(bool isSealed)
    {
        var status = isSealed ? HealthCheckResponse.Types.ServingStatus.NotServing : HealthCheckResponse.Types.ServingStatus.Serving;
        foreach (var service in Services)
        {
            health.SetStatus(service, status);
        }
    }
}
