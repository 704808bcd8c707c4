using Grpc.Health.V1;
using Grpc.HealthCheck;
using Microsoft.Extensions.Hosting;
using Vault.Server.Audit;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Hosting;

/// <summary>
/// Keeps the standard gRPC health service telling the truth. Readiness — the overall status (service
/// <c>""</c>) and every <c>vault.v1</c> service, all read from the protocol's descriptors so a new
/// service cannot be left out — is NOT_SERVING while sealed, while the audit log fails, or while the
/// store refuses writes (a full disk), since every request would then be refused. Liveness (service
/// <see cref="Liveness"/>) is SERVING for as long as the process answers, sealed or not, so a
/// Kubernetes liveness probe restarts a hung process, never a sealed one.
/// </summary>
public sealed class SealHealthPublisher(SecurityBarrier barrier, AuditLog audit, IVaultStore store, HealthServiceImpl health) : IHostedService
{
    /// <summary>The health service name of the liveness answer.</summary>
    public const string Liveness = "liveness";

    /// <summary>The overall status and every service of package <c>vault.v1</c>.</summary>
    public static IReadOnlyList<string> ReadinessServices { get; } = ["", .. Grpc.RpcNames.ServiceNames];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        barrier.SealStateChanged += Publish;
        audit.FailingChanged += Publish;
        store.FailingChanged += Publish;
        health.SetStatus(Liveness, HealthCheckResponse.Types.ServingStatus.Serving);
        Publish(barrier.IsSealed);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        barrier.SealStateChanged -= Publish;
        audit.FailingChanged -= Publish;
        store.FailingChanged -= Publish;
        // Shutting down: no longer ready for new work; still alive until the process ends.
        foreach (var service in ReadinessServices)
        {
            health.SetStatus(service, HealthCheckResponse.Types.ServingStatus.NotServing);
        }
        return Task.CompletedTask;
    }

    private void Publish(bool _)
    {
        var status = barrier.IsSealed || audit.Failure is not null || store.Failure is not null ? HealthCheckResponse.Types.ServingStatus.NotServing : HealthCheckResponse.Types.ServingStatus.Serving;
        foreach (var service in ReadinessServices)
        {
            health.SetStatus(service, status);
        }
    }
}
