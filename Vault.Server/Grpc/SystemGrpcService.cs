using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Vault.Protocol.V1;
using Vault.Server.Auth;
using Vault.Server.Crypto;
using Vault.Server.Hosting;
using Vault.Server.Secrets;

namespace Vault.Server.Grpc;

/// <summary>Init, unseal, seal, status and key rotation.</summary>
public sealed class SystemGrpcService(SecurityBarrier barrier, TokenManager tokens, RewrapService rewrap, Audit.AuditLog audit, Storage.IVaultStore store, TimeProvider clock, IOptions<VaultServerOptions> options, ListenerStatus listener)
    : SystemService.SystemServiceBase
{
    public override async Task<InitResponse> Init(InitRequest request, ServerCallContext context)
    {
        var o = options.Value;
        var kdf = request.Kdf is null
            ? new Crypto.KdfParameters(o.KdfMemoryKib, o.KdfIterations, o.KdfParallelism)
            : new Crypto.KdfParameters((int)request.Kdf.MemoryKib, (int)request.Kdf.Iterations, (int)request.Kdf.Parallelism);
        var (token, record) = await VaultInitializer.InitializeAsync(barrier, tokens, request.Passphrase, kdf, rootToken: null, context.CancellationToken);
        return new InitResponse { RootToken = token, RootTokenAccessor = record.Accessor };
    }

    public override async Task<StatusResponse> Unseal(UnsealRequest request, ServerCallContext context)
    {
        await barrier.UnsealAsync(request.Passphrase, context.CancellationToken);
        rewrap.Wake();
        return BuildStatus();
    }

    public override Task<StatusResponse> Seal(SealRequest request, ServerCallContext context)
    {
        barrier.Seal();
        return Task.FromResult(BuildStatus());
    }

    public override Task<StatusResponse> Status(StatusRequest request, ServerCallContext context) => Task.FromResult(BuildStatus());

    public override async Task<RotateKeyResponse> RotateKey(RotateKeyRequest request, ServerCallContext context)
    {
        var version = await barrier.RotateKeyAsync(context.CancellationToken);
        rewrap.Wake();
        return new RotateKeyResponse { KeyVersion = (uint)version, RotatedAt = Timestamp.FromDateTimeOffset(clock.GetUtcNow()) };
    }

    private StatusResponse BuildStatus()
    {
        var sealedNow = barrier.IsSealed;
        var storedKdf = barrier.StoredKdf;
        var response = new StatusResponse
        {
            Initialized = storedKdf is not null,
            Sealed = sealedNow,
            KeyVersion = (uint)barrier.CurrentKeyVersion,
            Version = typeof(SystemGrpcService).Assembly.GetName().Version?.ToString() ?? "",
        };
        if (!sealedNow)
        {
            response.RecordsPendingRewrap = (ulong)rewrap.PendingCount;
            response.RewrapInProgress = rewrap.InProgress;
        }
        response.AuditFailure = audit.Failure ?? "";
        response.StorageFailure = store.Failure ?? "";
        response.ListenerWarning = listener.Warning ?? "";
        if (storedKdf is { } kdf)
        {
            response.Kdf = new Protocol.V1.KdfParameters { MemoryKib = (uint)kdf.MemoryKib, Iterations = (uint)kdf.Iterations, Parallelism = (uint)kdf.Parallelism };
        }
        return response;
    }
}
