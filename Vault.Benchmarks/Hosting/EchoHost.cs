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
/// settings (see VaultServerHost.Build: plaintext HTTP/2 only on loopback, no Server header,
/// default gRPC options). What it lacks is exactly the vault's own work: the interceptor
/// (seal check, token lookup, ACL), the barrier and the store.
/// </summary>
internal sealed class EchoHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private EchoHost(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    public Uri Address { get; }

    /// <summary>
    /// An authorization header shaped like a vault token (prefix and 43 base64url characters), so
    /// that echo calls carry the same headers as vault calls; the echo service ignores it.
    /// </summary>
    public static Metadata Headers => new() { { "authorization", "Bearer vt_" + new string('x', 43) } };

    public static async Task<EchoHost> StartAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        HostAddress.QuietLogging(builder.Logging);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(IPAddress.Loopback, 0, endpoint => endpoint.Protocols = HttpProtocols.Http2);
        });
        builder.Services.AddGrpc();
        var app = builder.Build();
        app.MapGrpcService<EchoGrpcService>();
        await app.StartAsync(cancellationToken);
        return new EchoHost(app, HostAddress.Of(app));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }

    private sealed class EchoGrpcService : EchoService.EchoServiceBase
    {
        public override Task<EchoReply> Echo(EchoRequest request, ServerCallContext context) =>
            Task.FromResult(new EchoReply { Payload = request.Payload });
    }
}
