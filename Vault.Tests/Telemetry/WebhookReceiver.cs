using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Vault.Tests.Telemetry;

/// <summary>
/// A real HTTP receiver for the vault's webhook (Kestrel on loopback), written as a user would
/// write one: it verifies each request's signature with its own HMAC-SHA256 over <c>t.body</c> and
/// the key, checks the timestamp, and keeps what it accepted. It can be told to refuse (503).
/// </summary>
internal sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly byte[] _key;

    private WebhookReceiver(WebApplication app, byte[] key, Uri url) => (_app, _key, Url) = (app, key, url);

    /// <summary>One request as received.</summary>
    public sealed record Delivery(string EventId, string Signature, string ContentType, byte[] Body, DateTimeOffset ReceivedAt, int Answered)
    {
        public JsonElement Json => JsonDocument.Parse(Body).RootElement;

        public string Id => Json.GetProperty("id").GetString()!;

        public string Type => Json.GetProperty("type").GetString()!;
    }

    public Uri Url { get; }

    /// <summary>Every request, in the order received, with what it was answered.</summary>
    public ConcurrentQueue<Delivery> Requests { get; } = new();

    /// <summary>The requests answered 2xx.</summary>
    public IReadOnlyList<Delivery> Accepted => Requests.Where(r => r.Answered == 200).ToList();

    /// <summary>While set, every request is answered 503 (recorded all the same).</summary>
    public bool Refusing { get; set; }

    /// <summary>Starts a receiver on <paramref name="port"/> (0: any free one) that knows <paramref name="key"/>.</summary>
    public static async Task<WebhookReceiver> StartAsync(byte[] key, int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port, endpoint => endpoint.Protocols = HttpProtocols.Http1));
        var app = builder.Build();
        WebhookReceiver? receiver = null;
        app.MapPost("/hook", async (HttpContext context) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            var answered = receiver!.Refusing ? 503 : 200;
            receiver.Requests.Enqueue(new Delivery(context.Request.Headers["Vault-Event-Id"].ToString(), context.Request.Headers["Vault-Signature"].ToString(),
                context.Request.ContentType ?? "", body.ToArray(), DateTimeOffset.UtcNow, answered));
            context.Response.StatusCode = answered;
        });
        await app.StartAsync();
        var bound = new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First());
        receiver = new WebhookReceiver(app, key, new Uri(bound, "/hook"));
        return receiver;
    }

    /// <summary>Waits (up to <paramref name="timeout"/>) until the accepted requests satisfy <paramref name="condition"/>.</summary>
    public async Task<IReadOnlyList<Delivery>> WaitForAsync(Func<IReadOnlyList<Delivery>, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        while (true)
        {
            var accepted = Accepted;
            if (condition(accepted))
            {
                return accepted;
            }
            if (DateTimeOffset.UtcNow > deadline)
            {
                throw new TimeoutException($"the receiver did not get {what} within {timeout}; it accepted: {string.Join(", ", accepted.Select(a => a.Type))}");
            }
            await Task.Delay(100);
        }
    }

    /// <summary>
    /// What a receiver does with <c>Vault-Signature: t=…,v1=…</c>: recompute HMAC-SHA256(key, t + "." + body),
    /// compare in constant time, and refuse a timestamp more than 5 minutes from its own clock.
    /// </summary>
    public bool SignatureVerifies(Delivery delivery)
    {
        var parts = delivery.Signature.Split(',').Select(p => p.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
        if (!parts.TryGetValue("t", out var t) || !parts.TryGetValue("v1", out var v1) || !long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
        {
            return false;
        }
        if (Math.Abs((delivery.ReceivedAt - DateTimeOffset.FromUnixTimeSeconds(seconds)).TotalMinutes) > 5)
        {
            return false;
        }
        byte[] signed = [.. Encoding.UTF8.GetBytes(t + "."), .. delivery.Body];
        var expected = HMACSHA256.HashData(_key, signed);
        return CryptographicOperations.FixedTimeEquals(expected, Convert.FromHexString(v1));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
