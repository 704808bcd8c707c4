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
public sealed class SystemGrpcService(SecurityBarrier barrier, TokenManager tokens, RootGenerator roots, RewrapService rewrap, Backup.BackupService backups, Audit.AuditLog audit, Storage.IVaultStore store, TimeProvider clock, IOptions<VaultServerOptions> options, ListenerStatus listener,
    Cluster.NodeRole role)
    : SystemService.SystemServiceBase
{
    public override async Task<InitResponse> Init(InitRequest request, ServerCallContext context)
    {
        var o = options.Value;
        var kdf = request.Kdf is null
            ? new Crypto.KdfParameters(o.KdfMemoryKib, o.KdfIterations, o.KdfParallelism)
            : new Crypto.KdfParameters((int)request.Kdf.MemoryKib, (int)request.Kdf.Iterations, (int)request.Kdf.Parallelism);
        if (request.SecretShares > 0 || request.SecretThreshold > 0)
        {
            if (request.Passphrase.Length > 0 || request.Kdf is not null)
            {
                throw new ValidationException("passphrase", "give a passphrase or key shares (secret_shares), not both");
            }
            var (rootToken, rootRecord, split) = await VaultInitializer.InitializeWithSharesAsync(barrier, tokens, (int)Math.Min(request.SecretShares, int.MaxValue),
                (int)Math.Min(request.SecretThreshold, int.MaxValue), context.CancellationToken);
            var response = new InitResponse { RootToken = rootToken, RootTokenAccessor = rootRecord.Accessor };
            response.Shares.AddRange(split.Select(Convert.ToBase64String));
            return response;
        }
        var (token, record) = await VaultInitializer.InitializeAsync(barrier, tokens, request.Passphrase, kdf, rootToken: null, context.CancellationToken);
        return new InitResponse { RootToken = token, RootTokenAccessor = record.Accessor };
    }

    public override async Task<StatusResponse> Unseal(UnsealRequest request, ServerCallContext context)
    {
        if (request.Reset)
        {
            if (request.Passphrase.Length > 0 || request.Share.Length > 0)
            {
                throw new ValidationException("reset", "takes nothing else: no passphrase or share");
            }
            barrier.ResetUnsealProgress();
            return BuildStatus();
        }
        if (request.Share.Length > 0)
        {
            if (request.Passphrase.Length > 0)
            {
                throw new ValidationException("share", "give a share or a passphrase, not both");
            }
            var share = Base64(request.Share, "share");
            try
            {
                await barrier.UnsealWithShareAsync(share, context.CancellationToken);
            }
            finally
            {
                System.Security.Cryptography.CryptographicOperations.ZeroMemory(share);
            }
        }
        else if (request.Passphrase.Length == 0 && barrier.ShareConfig is { } config)
        {
            throw new ValidationException("share", $"is required: this vault unseals with key shares ({config.Threshold} of {config.Shares})");
        }
        else
        {
            await barrier.UnsealAsync(request.Passphrase, context.CancellationToken);
        }
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

    public override async Task<GenerateRootResponse> GenerateRoot(GenerateRootRequest request, ServerCallContext context)
    {
        if (request.Reset)
        {
            if (request.Passphrase.Length > 0 || request.Share.Length > 0 || request.Otp.Length > 0)
            {
                throw new ValidationException("reset", "takes nothing else: no passphrase, share or otp");
            }
            roots.Reset();
            return new GenerateRootResponse { Threshold = (uint)(barrier.ShareConfig?.Threshold ?? 0) };
        }
        var pad = request.Otp.Length > 0 ? Base64(request.Otp, "otp") : null;
        RootGeneration step;
        if (request.Passphrase.Length > 0)
        {
            step = await roots.WithPassphraseAsync(request.Passphrase, pad ?? throw new ValidationException("otp", "is required: 46 random bytes, base64"), context.CancellationToken);
        }
        else if (request.Share.Length > 0)
        {
            if (pad is not null)
            {
                throw new ValidationException("otp", "goes with the attempt's start, not with a share");
            }
            var share = Base64(request.Share, "share");
            try
            {
                step = await roots.WithShareAsync(share, context.CancellationToken);
            }
            finally
            {
                System.Security.Cryptography.CryptographicOperations.ZeroMemory(share);
            }
        }
        else
        {
            step = roots.Start(pad ?? throw new ValidationException("otp", "is required: 46 random bytes, base64"));
        }
        return new GenerateRootResponse
        {
            Progress = (uint)step.Progress,
            Threshold = (uint)step.Threshold,
            EncodedToken = step.EncodedToken ?? "",
            RootTokenAccessor = step.Accessor ?? "",
        };
    }

    public override async Task<RekeyResponse> Rekey(RekeyRequest request, ServerCallContext context)
    {
        var given = new[] { request.Passphrase.Length > 0 || request.NewPassphrase.Length > 0, request.NewShares > 0 || request.NewThreshold > 0,
            request.Share.Length > 0, request.VerifyShare.Length > 0, request.Reset }.Count(g => g);
        if (given != 1)
        {
            throw new ValidationException("rekey", "give one of: passphrase and new_passphrase; new_shares and new_threshold; share; verify_share; reset");
        }
        if (request.Passphrase.Length > 0 || request.NewPassphrase.Length > 0)
        {
            await barrier.ChangePassphraseAsync(request.Passphrase, request.NewPassphrase, context.CancellationToken);
            return new RekeyResponse { RekeyedAt = Timestamp.FromDateTimeOffset(clock.GetUtcNow()) };
        }
        ShareRekeyStep step;
        if (request.Reset)
        {
            await barrier.ResetShareRekeyAsync(context.CancellationToken);
            return new RekeyResponse();
        }
        if (request.NewShares > 0 || request.NewThreshold > 0)
        {
            step = await barrier.StartShareRekeyAsync((int)Math.Min(request.NewShares, 1000), (int)Math.Min(request.NewThreshold, 1000), context.CancellationToken);
        }
        else
        {
            var verify = request.VerifyShare.Length > 0;
            var share = Base64(verify ? request.VerifyShare : request.Share, verify ? "verify_share" : "share");
            try
            {
                step = verify
                    ? await barrier.VerifyRekeyShareAsync(share, context.CancellationToken)
                    : await barrier.RekeyWithShareAsync(share, context.CancellationToken);
            }
            finally
            {
                System.Security.Cryptography.CryptographicOperations.ZeroMemory(share);
            }
        }
        var response = new RekeyResponse { Progress = (uint)step.Progress, Threshold = (uint)step.Threshold, VerificationPending = step.VerificationPending };
        if (step.NewShares is { } shares)
        {
            response.NewShares.AddRange(shares.Select(Convert.ToBase64String));
        }
        if (step.RekeyedAt is { } at)
        {
            response.RekeyedAt = Timestamp.FromDateTimeOffset(at);
        }
        return response;
    }

    public override async Task Backup(BackupRequest request, IServerStreamWriter<BackupChunk> responseStream, ServerCallContext context)
    {
        BackupChunk? first = null;
        await backups.WriteAsync(
            header =>
            {
                first = new BackupChunk { Index = header.Index, CreatedAt = Timestamp.FromDateTimeOffset(header.CreatedAt), Records = header.Records };
                return ValueTask.CompletedTask;
            },
            async (bytes, cancellationToken) =>
            {
                var chunk = first ?? new BackupChunk();
                first = null;
                chunk.Data = Google.Protobuf.ByteString.CopyFrom(bytes.Span);
                await responseStream.WriteAsync(chunk, cancellationToken);
            },
            context.CancellationToken);
    }

    private static byte[] Base64(string value, string field)
    {
        try
        {
            return Convert.FromBase64String(value.Trim());
        }
        catch (FormatException)
        {
            throw new ValidationException(field, "is not base64");
        }
    }

    private StatusResponse BuildStatus()
    {
        var sealedNow = barrier.IsSealed;
        var storedKdf = barrier.StoredKdf;
        var response = new StatusResponse
        {
            Initialized = barrier.IsInitialized,
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
        response.NodeId = role.NodeId ?? "";
        response.Active = role.IsActive;
        response.ActiveAddress = role.IsClustered ? role.ActiveAddress ?? "" : "";
        response.CommitIndex = (ulong)Math.Max(0, store.CommitIndex);
        if (barrier.ShareConfig is { } shares)
        {
            response.SecretShares = (uint)shares.Shares;
            response.SecretThreshold = (uint)shares.Threshold;
            response.UnsealProgress = sealedNow ? (uint)barrier.UnsealProgress : 0;
        }
        if (storedKdf is { } kdf)
        {
            response.Kdf = new Protocol.V1.KdfParameters { MemoryKib = (uint)kdf.MemoryKib, Iterations = (uint)kdf.Iterations, Parallelism = (uint)kdf.Parallelism };
        }
        return response;
    }
}
