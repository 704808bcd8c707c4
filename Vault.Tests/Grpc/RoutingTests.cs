using Google.Protobuf;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Grpc;

/// <summary>ASP.NET Core matches routes case-insensitively; the interceptor must not care how a path is spelled.</summary>
public sealed class RoutingTests
{
    private static Method<TRequest, TResponse> Spelled<TRequest, TResponse>(string service, string method, MessageParser<TResponse> parser)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse> =>
        new(MethodType.Unary, service, method,
            Marshallers.Create<TRequest>(r => r.ToByteArray(), _ => throw new NotSupportedException()),
            Marshallers.Create(r => r.ToByteArray(), parser.ParseFrom));

    [Theory]
    [InlineData("VAULT.V1.KvService", "Get")]
    [InlineData("vault.v1.kvservice", "get")]
    [InlineData("Vault.V1.KvService", "Get")]
    public async Task MixedCasePath_WithoutToken_IsStillUnauthenticated(string service, string method)
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "route/secret", Data = { ["k"] = "must-not-leak" } }, vault.As());
        var call = Spelled<GetSecretRequest, GetSecretResponse>(service, method, GetSecretResponse.Parser);
        var ex = await Rpc.FailsWith(StatusCode.Unauthenticated,
            async () => await vault.Channel.CreateCallInvoker().AsyncUnaryCall(call, null, new CallOptions(), new GetSecretRequest { Path = "route/secret" }));
        Assert.DoesNotContain("must-not-leak", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MixedCaseSeal_WithoutToken_DoesNotSeal()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var call = Spelled<SealRequest, StatusResponse>("VAULT.V1.SystemService", "Seal", StatusResponse.Parser);
        await Rpc.FailsWith(StatusCode.Unauthenticated,
            async () => await vault.Channel.CreateCallInvoker().AsyncUnaryCall(call, null, new CallOptions(), new SealRequest()));
        Assert.False((await vault.System.StatusAsync(new StatusRequest())).Sealed);
    }
}
