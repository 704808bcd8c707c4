using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Server.Auth;
using Vault.Server.Identity;

namespace Vault.Server.Grpc;

/// <summary>TOTP enrolment and step-up validation over gRPC, for the caller's own entity; status and reset for admins.</summary>
public sealed class MfaGrpcService(MfaManager mfa) : MfaService.MfaServiceBase
{
    public override async Task<EnrollMfaResponse> Enroll(EnrollMfaRequest request, ServerCallContext context)
    {
        MfaEnrollment enrollment;
        if (request.Entity.Length > 0)
        {
            // An admin enrols someone (the access table checked update on identity/entity/<name>/mfa).
            enrollment = await mfa.EnrollAsync(request.Entity, mfa.EntityIdOf(request.Entity), context.CancellationToken);
        }
        else
        {
            var caller = Person(context);
            Audit.AuditScope.NameIfUnnamed($"{ResourcePaths.Entity(caller.Token.Entity)}/mfa");
            enrollment = await mfa.EnrollAsync(caller.Token.Entity, caller.Token.EntityId, context.CancellationToken);
        }
        return new EnrollMfaResponse { OtpauthUri = enrollment.OtpauthUri, RecoveryCodes = { enrollment.RecoveryCodes } };
    }

    public override async Task<ValidateMfaResponse> Validate(ValidateMfaRequest request, ServerCallContext context)
    {
        var caller = Person(context);
        Audit.AuditScope.NameIfUnnamed($"{ResourcePaths.Entity(caller.Token.Entity)}/mfa");
        if (string.IsNullOrWhiteSpace(request.Code) || request.Code.Length > 64)
        {
            throw new ValidationException("code", "must be 1 to 64 characters: six digits, or a recovery code");
        }
        var (record, left) = await mfa.ValidateAsync(caller.Accessor, caller.Token.Entity, caller.Token.EntityId, request.Code, context.CancellationToken);
        return new ValidateMfaResponse { ValidatedAt = ProtoMapping.Time(record.MfaAtUnixMs!.Value), RecoveryCodesLeft = (uint)left };
    }

    public override Task<MfaStatus> GetMfa(GetMfaRequest request, ServerCallContext context)
    {
        var record = mfa.Get(request.Entity);
        var status = new MfaStatus { Entity = request.Entity };
        if (record is not null)
        {
            status.Enrolled = record.Confirmed;
            status.Pending = !record.Confirmed;
            status.RecoveryCodesLeft = (uint)record.RecoveryCodeHashes.Count;
            status.EnrolledAt = ProtoMapping.Time(record.EnrolledAtUnixMs);
        }
        return Task.FromResult(status);
    }

    public override async Task<ResetMfaResponse> ResetMfa(ResetMfaRequest request, ServerCallContext context)
    {
        await mfa.ResetAsync(request.Entity, context.CancellationToken);
        return new ResetMfaResponse();
    }

    /// <summary>The caller, who must be a person: a program's token has no entity to enrol.</summary>
    private static CallerContext Person(ServerCallContext context)
    {
        var caller = VaultInterceptor.Caller(context);
        return caller.Token.EntityId.Length > 0
            ? caller
            : throw new PreconditionException("MFA is for people: this token does not act for an entity (log in with vaultctl login)");
    }
}
