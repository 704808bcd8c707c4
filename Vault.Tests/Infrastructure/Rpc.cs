using Grpc.Core;

namespace Vault.Tests.Infrastructure;

/// <summary>Assertions on gRPC outcomes.</summary>
public static class Rpc
{
    public static async Task<RpcException> FailsWith(StatusCode expected, Func<Task> call)
    {
        var ex = await Assert.ThrowsAsync<RpcException>(call);
        Assert.True(ex.StatusCode == expected, $"expected {expected}, got {ex.StatusCode}: {ex.Status.Detail}");
        return ex;
    }

    public static Task<RpcException> FailsWith<T>(StatusCode expected, Func<AsyncUnaryCall<T>> call) =>
        FailsWith(expected, async () => await call());
}
