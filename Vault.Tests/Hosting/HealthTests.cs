using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Grpc.Health.V1;
using Vault.Protocol.V1;
using Vault.Server.Hosting;
using Vault.Tests.Infrastructure;
using static Grpc.Health.V1.HealthCheckResponse.Types;

namespace Vault.Tests.Hosting;

/// <summary>
/// The gRPC health service as probes see it: every vault.v1 service and the overall status are ready
/// only while the vault can serve (unsealed; the audit and store failures are DiskFullTests'), and
/// the liveness answer is SERVING sealed or not.
/// </summary>
public sealed class HealthTests
{
    [Fact]
    public async Task EveryService_IsReadyOnlyWhileUnsealed_AndLivenessServesThroughout()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var health = new Health.HealthClient(vault.Channel);
        var services = Reflected(vault);

        var unsealed = await StatusesAsync(health, services);
        await vault.System.SealAsync(new SealRequest(), vault.As());
        var sealedStatuses = await StatusesAsync(health, services);
        var liveWhileSealed = (await health.CheckAsync(new HealthCheckRequest { Service = SealHealthPublisher.Liveness })).Status;

        // Every service the server exposes has an answer (none is NOT_FOUND), the overall one too.
        Assert.Contains("vault.v1.TargetService", services);
        Assert.Contains("vault.v1.AccessService", services);
        Assert.All(unsealed, s => Assert.True(s.Value == ServingStatus.Serving, $"{s.Key} is {s.Value} while unsealed"));
        Assert.All(sealedStatuses, s => Assert.True(s.Value == ServingStatus.NotServing, $"{s.Key} is {s.Value} while sealed"));
        Assert.Equal(ServingStatus.Serving, liveWhileSealed);
    }

    [Fact]
    public async Task AServiceTheServerDoesNotHave_IsNotFound()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var health = new Health.HealthClient(vault.Channel);

        var ex = await Assert.ThrowsAsync<RpcException>(async () => await health.CheckAsync(new HealthCheckRequest { Service = "vault.v1.NoSuchService" }));

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
    }

    /// <summary>The overall status and every vault.v1 service the running server maps (from its reflection service).</summary>
    private static List<string> Reflected(TestVault vault)
    {
        var services = Vault.Server.Hosting.SealHealthPublisher.ReadinessServices.ToList();
        // The server's own list must be the services it actually serves: compare with the endpoints.
        var mapped = vault.Services.GetRequiredService<Microsoft.AspNetCore.Routing.EndpointDataSource>().Endpoints
            .Select(e => e.Metadata.GetMetadata<global::Grpc.AspNetCore.Server.GrpcMethodMetadata>()?.Method.ServiceName)
            .OfType<string>()
            .Where(n => n.StartsWith("vault.v1.", StringComparison.Ordinal))
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.Equal(mapped, services.Where(s => s.Length > 0).ToList());
        return services;
    }

    private static async Task<Dictionary<string, ServingStatus>> StatusesAsync(Health.HealthClient health, IEnumerable<string> services)
    {
        var statuses = new Dictionary<string, ServingStatus>(StringComparer.Ordinal);
        foreach (var service in services)
        {
            statuses[service.Length == 0 ? "(overall)" : service] = (await health.CheckAsync(new HealthCheckRequest { Service = service })).Status;
        }
        return statuses;
    }
}
