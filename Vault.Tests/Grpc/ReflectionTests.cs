using Grpc.Reflection.V1Alpha;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Grpc;

public sealed class ReflectionTests
{
    [Fact]
    public async Task Reflection_ListsTheVaultServices_SoGrpcurlCanDiscoverThem()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var client = new ServerReflection.ServerReflectionClient(vault.Channel);
        using var call = client.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        Assert.Contains("vault.v1.KvService", services);
        Assert.Contains("vault.v1.SystemService", services);
        Assert.Contains("vault.v1.TokenService", services);
        Assert.Contains("vault.v1.PolicyService", services);
        Assert.Contains("grpc.health.v1.Health", services);
    }
}
