using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Server.Identity;

namespace Vault.Server.Grpc;

/// <summary>Directory login over gRPC.</summary>
public sealed class LdapGrpcService(LdapLogin ldap) : LdapService.LdapServiceBase
{
    public override async Task<LdapConfig> SetConfig(SetLdapConfigRequest request, ServerCallContext context)
    {
        var config = request.Config ?? throw new ValidationException("config", "is required");
        var record = await ldap.SetConfigAsync(new LdapSpec(config.Url, config.StartTls, config.CaCertificatePem, config.UserDnTemplate, config.GroupBaseDn,
            config.GroupAttribute, config.GroupMap, config.TokenTtl.AsTimeSpan("config.token_ttl"), config.TokenMaxTtl.AsTimeSpan("config.token_max_ttl"), config.RequireMfa), context.CancellationToken);
        return ToProto(record);
    }

    public override Task<LdapConfig> GetConfig(GetLdapConfigRequest request, ServerCallContext context) => Task.FromResult(ToProto(ldap.GetConfig()));

    public override async Task<LdapLoginResponse> Login(LdapLoginRequest request, ServerCallContext context)
    {
        var (token, record) = await ldap.LoginAsync(request.Username, request.Password, request.MfaCode, context.CancellationToken);
        return new LdapLoginResponse { Token = token, Info = record.ToProto() };
    }

    private static LdapConfig ToProto(LdapConfigRecord record) => new()
    {
        Url = record.Url,
        StartTls = record.StartTls,
        CaCertificatePem = record.CaCertificatePem,
        UserDnTemplate = record.UserDnTemplate,
        GroupBaseDn = record.GroupBaseDn,
        GroupAttribute = record.GroupAttribute,
        GroupMap = { record.GroupMap },
        TokenTtl = Duration.FromTimeSpan(TimeSpan.FromSeconds(record.TokenTtlSeconds)),
        TokenMaxTtl = Duration.FromTimeSpan(TimeSpan.FromSeconds(record.TokenMaxTtlSeconds)),
        RequireMfa = record.RequireMfa,
    };
}
