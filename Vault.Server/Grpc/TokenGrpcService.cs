using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Server.Auth;

namespace Vault.Server.Grpc;

/// <summary>Tokens over gRPC. An empty accessor means the calling token itself.</summary>
public sealed class TokenGrpcService(TokenManager tokens) : TokenService.TokenServiceBase
{
    public override async Task<CreateTokenResponse> Create(CreateTokenRequest request, ServerCallContext context)
    {
        var caller = VaultInterceptor.Caller(context);
        var (token, record) = await tokens.CreateAsync(caller,
            new TokenRequest(request.Policies, request.Ttl.AsTimeSpan("ttl"), request.MaxTtl.AsTimeSpan("max_ttl"), request.DisplayName, request.Orphan),
            context.CancellationToken);
        return new CreateTokenResponse { Token = token, Info = record.ToProto() };
    }

    public override Task<TokenInfo> Lookup(LookupTokenRequest request, ServerCallContext context)
    {
        var caller = VaultInterceptor.Caller(context);
        var record = request.Accessor.Length == 0 ? caller.Token : tokens.LookupByAccessor(request.Accessor);
        return Task.FromResult(record.ToProto());
    }

    public override async Task<TokenInfo> Renew(RenewTokenRequest request, ServerCallContext context)
    {
        var caller = VaultInterceptor.Caller(context);
        var accessor = request.Accessor.Length == 0 ? caller.Accessor : request.Accessor;
        return (await tokens.RenewAsync(accessor, request.Increment.AsTimeSpan("increment"), context.CancellationToken)).ToProto();
    }

    public override async Task<RevokeTokenResponse> Revoke(RevokeTokenRequest request, ServerCallContext context)
    {
        var caller = VaultInterceptor.Caller(context);
        var accessor = request.Accessor.Length == 0 ? caller.Accessor : request.Accessor;
        return new RevokeTokenResponse { Revoked = (uint)await tokens.RevokeAsync(accessor, context.CancellationToken) };
    }
}
