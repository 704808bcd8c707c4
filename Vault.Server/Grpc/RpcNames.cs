using ServiceDescriptor = Google.Protobuf.Reflection.ServiceDescriptor;
using Vault.Protocol.V1;

namespace Vault.Server.Grpc;

/// <summary>
/// The canonical method name of a vault.v1 request message (each message is the input of one
/// method), for the audit log: the request path as sent may be spelled in any case.
/// </summary>
internal static class RpcNames
{
    private static readonly Dictionary<Type, string> ByRequestType = new ServiceDescriptor[]
        {
            SystemService.Descriptor, KvService.Descriptor, TokenService.Descriptor, PolicyService.Descriptor, AuditService.Descriptor, AppRoleService.Descriptor, TargetService.Descriptor, LeaseService.Descriptor,
        }
        .SelectMany(s => s.Methods)
        .ToDictionary(m => m.InputType.ClrType, m => $"{m.Service.FullName}/{m.Name}");

    public static string For(object request) => ByRequestType.TryGetValue(request.GetType(), out var name) ? name : request.GetType().Name;
}
