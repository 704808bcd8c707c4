using System.Reflection;
using Google.Protobuf.Reflection;
using Vault.Protocol.V1;

namespace Vault.Server.Grpc;

/// <summary>
/// The canonical method name of a vault.v1 request message (each message is the input of one
/// method), for the audit log: the request path as sent may be spelled in any case. Read from
/// every vault.v1 proto file of the protocol assembly, so a new service needs no entry here; the
/// same scan names the services health reports on.
/// </summary>
internal static class RpcNames
{
    /// <summary>Every vault.v1 service of the protocol assembly.</summary>
    private static readonly Google.Protobuf.Reflection.ServiceDescriptor[] Services = typeof(KvService).Assembly.GetTypes()
        .Select(t => t.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static))
        .Where(p => p?.PropertyType == typeof(FileDescriptor))
        .Select(p => (FileDescriptor)p!.GetValue(null)!)
        .Where(f => f.Package == "vault.v1")
        .SelectMany(f => f.Services)
        .ToArray();

    private static readonly Dictionary<Type, string> ByRequestType = Services
        .SelectMany(s => s.Methods)
        .ToDictionary(m => m.InputType.ClrType, m => $"{m.Service.FullName}/{m.Name}");

    /// <summary>The full names of every vault.v1 service, in order (what health reports on).</summary>
    public static IReadOnlyList<string> ServiceNames { get; } = [.. Services.Select(s => s.FullName).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];

    public static string For(object request) => ByRequestType.TryGetValue(request.GetType(), out var name) ? name : request.GetType().Name;
}
