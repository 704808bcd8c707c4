using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using Vault.Server.Hosting;

namespace Vault.Server.Telemetry;

/// <summary>
/// The Prometheus scrape endpoint, <c>GET /metrics</c>, on a listener of its own
/// (<see cref="TelemetryOptions.MetricsListen"/>): a separate web host that serves nothing else, so
/// scraping needs no vault token and cannot reach the gRPC API. With
/// <see cref="TelemetryOptions.MetricsTokenFile"/> a scrape must carry <c>Authorization: Bearer</c>
/// and that token (compared in constant time); without it, anyone who reaches the address may read the metrics,
/// which hold no secret.
/// </summary>
public sealed class MetricsListener(IOptions<TelemetryOptions> options, IServiceProvider services, ILogger<MetricsListener> logger) : IHostedService, IAsyncDisposable
{
    private WebApplication? _app;

    /// <summary>Where the scrape endpoint listens (the port bound when 0 was asked for); null when there is no listener.</summary>
    public Uri? Address { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(options.Value.MetricsListen))
        {
            return;
        }
        var listen = ListenAddress.Parse(options.Value.MetricsListen, "metrics-listen");
        var meterProvider = services.GetRequiredService<MeterProvider>();
        var token = options.Value.MetricsTokenFile is { Length: > 0 } file ? ReadToken(file) : null;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(listen.Address, listen.Port, endpoint => endpoint.Protocols = HttpProtocols.Http1);
        });
        var app = builder.Build();
        if (token is not null)
        {
            app.Use(async (context, next) =>
            {
                if (!Authorised(context.Request.Headers.Authorization.ToString(), token))
                {
                    context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                    context.Response.Headers.WWWAuthenticate = "Bearer";
                    return;
                }
                await next(context);
            });
        }
        app.UseOpenTelemetryPrometheusScrapingEndpoint(meterProvider, context => context.Request.Path == "/metrics", null, null, null);
        app.Run(context =>
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return Task.CompletedTask;
        });
        await app.StartAsync(cancellationToken);
        _app = app;
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Address = new Uri(bound);
        TelemetryLog.MetricsListening(logger, bound, token is not null);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null)
        {
            await _app.StopAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
            _app = null;
        }
    }

    private static byte[] ReadToken(string file)
    {
        string text;
        try
        {
            text = File.ReadAllText(file).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ValidationException("metrics-token-file", $"cannot be read: {ex.Message}");
        }
        return text.Length == 0 ? throw new ValidationException("metrics-token-file", "is empty") : Encoding.UTF8.GetBytes(text);
    }

    private static bool Authorised(string header, byte[] token)
    {
        const string prefix = "Bearer ";
        if (!header.StartsWith(prefix, StringComparison.Ordinal))
        {
            return false;
        }
        var given = Encoding.UTF8.GetBytes(header[prefix.Length..].Trim());
        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(given), SHA256.HashData(token));
    }
}
