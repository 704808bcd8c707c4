using System.Net;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Vault.Benchmarks.Echo;

namespace Vault.Benchmarks.Hosting;

/// <summary>
/// The transport's ceiling: a gRPC service that does nothing, hosted with the vault's Kestrel
/// settings (see VaultServerHost.Build: loopback, no Server header, default gRPC options;
/// plaintext HTTP/2 only, or with a certificate HTTP/1.1 and HTTP/2 over TLS with ALPN). What it
/// lacks is exactly the vault's own work: the interceptor (seal check, token lookup, ACL, audit),
/// the barrier and the store. It runs in its own process (<c>serve-echo</c>).
/// </summary>
internal static class EchoHost
{
    /// <summary>
    /// An authorization header shaped like a vault token (prefix and 43 base64url characters), so
    /// that echo calls carry the same headers as vault calls; the echo service ignores it.
    /// </summary>
    public static Metadata Headers => new() { { "authorization", "Bearer vt_" + new string('x', 43) } };

    public static WebApplication Build(TlsFiles? tls)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        HostAddress.QuietLogging(builder.Logging);
        var certificate = tls?.LoadServerCertificate();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(IPAddress.Loopback, 0, endpoint =>
            {
                if (certificate is null)
                {
                    endpoint.Protocols = HttpProtocols.Http2;
                }
                else
                {
                    endpoint.Protocols = HttpProtocols.Http1AndHttp2;
                    endpoint.UseHttps(certificate);
                }
            });
        });
        builder.Services.AddGrpc();
        var app = builder.Build();
        app.MapGrpcService<EchoGrpcService>();
        return app;
    }

    private sealed class EchoGrpcService : EchoService.EchoServiceBase
    {
        public override Task<EchoReply> Echo(EchoRequest request, ServerCallContext context) =>
            Task.FromResult(new EchoReply { Payload = request.Payload });
    }
}
