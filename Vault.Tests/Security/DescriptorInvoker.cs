using System.Reflection;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Vault.Protocol.V1;

namespace Vault.Tests.Security;

/// <summary>
/// Calls any vault.v1 RPC by its descriptor, without the generated stubs, so a test that walks
/// the descriptors reaches an RPC added later without being edited.
/// </summary>
public static class DescriptorInvoker
{
    public const string Package = "vault.v1";

    /// <summary>Every method of every service in every vault.v1 proto file of the protocol assembly.</summary>
    public static IReadOnlyList<MethodDescriptor> AllMethods { get; } = typeof(KvService).Assembly.GetTypes()
        .Select(t => t.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static))
        .Where(p => p?.PropertyType == typeof(FileDescriptor))
        .Select(p => (FileDescriptor)p!.GetValue(null)!)
        .Where(f => f.Package == Package)
        .SelectMany(f => f.Services)
        .SelectMany(s => s.Methods)
        .OrderBy(m => m.FullName, StringComparer.Ordinal)
        .ToList();

    /// <summary>"vault.v1.KvService/Put", the form the server and the audit log use.</summary>
    public static string NameOf(MethodDescriptor method) => $"{method.Service.FullName}/{method.Name}";

    public static MethodDescriptor Find(string name) =>
        AllMethods.SingleOrDefault(m => NameOf(m) == name) ?? throw new InvalidOperationException($"no vault.v1 method named {name}");

    /// <summary>
    /// Sends <paramref name="request"/> and parses the answer with the method's output parser. A
    /// server stream answers with its first message (its status if it fails first) and is then closed.
    /// </summary>
    public static async Task<IMessage> CallAsync(CallInvoker invoker, MethodDescriptor method, IMessage request, CallOptions options)
    {
        CheckSupported(method);
        var type = method.IsServerStreaming ? MethodType.ServerStreaming : MethodType.Unary;
        var call = new Method<IMessage, IMessage>(type, method.Service.FullName, method.Name,
            Marshallers.Create<IMessage>(m => m.ToByteArray(), method.InputType.Parser.ParseFrom),
            Marshallers.Create<IMessage>(m => m.ToByteArray(), method.OutputType.Parser.ParseFrom));
        return method.IsServerStreaming
            ? await FirstAsync(invoker.AsyncServerStreamingCall(call, host: null, options, request))
            : await invoker.AsyncUnaryCall(call, host: null, options, request);
    }

    /// <summary>Sends arbitrary bytes as the request body (the server does the parsing).</summary>
    public static async Task<byte[]> CallRawAsync(CallInvoker invoker, MethodDescriptor method, byte[] body, CallOptions options)
    {
        CheckSupported(method);
        var bytes = Marshallers.Create<byte[]>(b => b, b => b);
        var type = method.IsServerStreaming ? MethodType.ServerStreaming : MethodType.Unary;
        var call = new Method<byte[], byte[]>(type, method.Service.FullName, method.Name, bytes, bytes);
        return method.IsServerStreaming
            ? await FirstAsync(invoker.AsyncServerStreamingCall(call, host: null, options, body))
            : await invoker.AsyncUnaryCall(call, host: null, options, body);
    }

    private static async Task<T> FirstAsync<T>(AsyncServerStreamingCall<T> call)
    {
        using (call)
        {
            if (!await call.ResponseStream.MoveNext(CancellationToken.None))
            {
                throw new RpcException(call.GetStatus());
            }
            return call.ResponseStream.Current;
        }
    }

    private static void CheckSupported(MethodDescriptor method)
    {
        if (method.IsClientStreaming)
        {
            throw new NotSupportedException($"{NameOf(method)} streams requests; the invoker calls unary and server-streaming RPCs only");
        }
    }

    /// <summary>The status code of a call: OK, or the code of the <see cref="RpcException"/>.</summary>
    public static async Task<Status> StatusOfAsync(Func<Task> call)
    {
        try
        {
            await call();
            return Status.DefaultSuccess;
        }
        catch (RpcException ex)
        {
            return ex.Status;
        }
    }
}
