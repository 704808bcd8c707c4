using System.Diagnostics;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Vault.Server.Telemetry;

/// <summary>
/// Times every RPC and records it with the status code the client got. Registered before the
/// vault's own interceptor, so it sees the status that interceptor answers with (a refused token,
/// a sealed vault) and the whole time a call took, admission aside.
/// </summary>
public sealed class MetricsInterceptor(VaultMetrics metrics) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        ArgumentNullException.ThrowIfNull(context);
        var started = Stopwatch.GetTimestamp();
        try
        {
            var response = await continuation(request, context);
            metrics.RpcAnswered(context.Method, StatusCode.OK, Stopwatch.GetElapsedTime(started));
            return response;
        }
        catch (Exception ex)
        {
            metrics.RpcAnswered(context.Method, StatusOf(ex), Stopwatch.GetElapsedTime(started));
            throw;
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        ArgumentNullException.ThrowIfNull(context);
        var started = Stopwatch.GetTimestamp();
        try
        {
            await continuation(request, responseStream, context);
            metrics.RpcAnswered(context.Method, StatusCode.OK, Stopwatch.GetElapsedTime(started));
        }
        catch (Exception ex)
        {
            metrics.RpcAnswered(context.Method, StatusOf(ex), Stopwatch.GetElapsedTime(started));
            throw;
        }
    }

    private static StatusCode StatusOf(Exception ex) => ex switch
    {
        RpcException rpc => rpc.StatusCode,
        OperationCanceledException => StatusCode.Cancelled,
        _ => StatusCode.Unknown,
    };
}
