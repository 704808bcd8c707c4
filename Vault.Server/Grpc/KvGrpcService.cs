using Grpc.Core;
using Google.Protobuf.WellKnownTypes;
using Vault.Protocol.V1;
using Vault.Server.Secrets;

namespace Vault.Server.Grpc;

/// <summary>KV over gRPC: maps messages to <see cref="KvEngine"/>; authorisation happened in the interceptor.</summary>
public sealed class KvGrpcService(KvEngine kv) : KvService.KvServiceBase
{
    public override async Task<PutSecretResponse> Put(PutSecretRequest request, ServerCallContext context)
    {
        var (version, created) = await kv.PutAsync(request.Path, request.Data, request.HasCas ? request.Cas : null, context.CancellationToken);
        return new PutSecretResponse { Version = (ulong)version, CreatedAt = Timestamp.FromDateTimeOffset(created) };
    }

    public override Task<GetSecretResponse> Get(GetSecretRequest request, ServerCallContext context)
    {
        var value = kv.Get(request.Path, request.Version);
        var response = new GetSecretResponse
        {
            Path = value.Path,
            Version = (ulong)value.Version,
            CreatedAt = Timestamp.FromDateTimeOffset(value.CreatedAt),
        };
        foreach (var (key, item) in value.Data)
        {
            response.Data[key] = item;
        }
        foreach (var (key, item) in value.CustomMetadata)
        {
            response.CustomMetadata[key] = item;
        }
        return Task.FromResult(response);
    }

    public override Task<ListSecretsResponse> List(ListSecretsRequest request, ServerCallContext context)
    {
        var response = new ListSecretsResponse();
        response.Keys.AddRange(kv.List(request.Prefix));
        return Task.FromResult(response);
    }

    public override async Task<DeleteSecretResponse> Delete(DeleteSecretRequest request, ServerCallContext context)
    {
        var versions = await kv.DeleteAsync(request.Path, request.Versions, context.CancellationToken);
        var response = new DeleteSecretResponse();
        response.Versions.AddRange(versions.Select(v => (ulong)v));
        return response;
    }

    public override async Task<UndeleteSecretResponse> Undelete(UndeleteSecretRequest request, ServerCallContext context)
    {
        var versions = await kv.UndeleteAsync(request.Path, request.Versions, context.CancellationToken);
        var response = new UndeleteSecretResponse();
        response.Versions.AddRange(versions.Select(v => (ulong)v));
        return response;
    }

    public override async Task<DestroySecretResponse> Destroy(DestroySecretRequest request, ServerCallContext context)
    {
        var versions = await kv.DestroyAsync(request.Path, request.Versions, context.CancellationToken);
        var response = new DestroySecretResponse();
        response.Versions.AddRange(versions.Select(v => (ulong)v));
        return response;
    }

    public override Task<SecretMetadata> GetMetadata(GetMetadataRequest request, ServerCallContext context)
    {
        var (path, meta) = kv.GetMetadata(request.Path);
        return Task.FromResult(meta.ToProto(path));
    }

    public override async Task<SecretMetadata> UpdateMetadata(UpdateMetadataRequest request, ServerCallContext context)
    {
        var meta = await kv.UpdateMetadataAsync(
            request.Path,
            request.HasMaxVersions && request.MaxVersions != 0 ? request.MaxVersions : null,
            request.HasCasRequired ? request.CasRequired : null,
            request.ReplaceCustomMetadata ? request.CustomMetadata : null,
            context.CancellationToken);
        return meta.ToProto(request.Path);
    }

    public override async Task<DeleteMetadataResponse> DeleteMetadata(DeleteMetadataRequest request, ServerCallContext context)
    {
        await kv.DeleteMetadataAsync(request.Path, context.CancellationToken);
        return new DeleteMetadataResponse();
    }
}
