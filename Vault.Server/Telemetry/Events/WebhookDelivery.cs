using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Vault.Clocks;

namespace Vault.Server.Telemetry.Events;

/// <summary>
/// Delivers the spooled events to the webhook, oldest first, one at a time (a receiver sees them
/// in the order they happened): a <c>POST</c> of the event's JSON, signed (<see cref="Sign"/>); a
/// 2xx answer deletes the event from the spool, anything else (another status, no answer within
/// the timeout, a refused connection) is retried after a wait that doubles from
/// <see cref="WebhookOptions.MinBackoff"/> up to <see cref="WebhookOptions.MaxBackoff"/>, with
/// jitter. On start it resumes with whatever the spool holds. Waits are on the vault's clock.
/// Delivery is at least once: a receiver that acknowledges an event after the vault gave up on the
/// answer gets it again, with the same id (<c>Vault-Event-Id</c>), so receivers drop repeats by id.
/// </summary>
public sealed class WebhookDelivery : BackgroundService
{
    /// <summary>The signature header: <c>t=UNIX_SECONDS,v1=HEX(HMAC-SHA256(key, "t." + body))</c>.</summary>
    public const string SignatureHeader = "Vault-Signature";

    public const string EventIdHeader = "Vault-Event-Id";

    private readonly EventSpool _spool;
    private readonly IOptions<EventOptions> _options;
    private readonly TimeProvider _clock;
    private readonly ILogger<WebhookDelivery> _logger;
    private readonly WakeSignal _wake;
    private readonly Counter<long> _failures;
    private WebhookSettings? _settings;
    private HttpClient? _http;

    public WebhookDelivery(EventSpool spool, IOptions<EventOptions> options, TimeProvider clock, IMeterFactory meters, ILogger<WebhookDelivery> logger)
    {
        ArgumentNullException.ThrowIfNull(spool);
        ArgumentNullException.ThrowIfNull(meters);
        _spool = spool;
        _options = options;
        _clock = clock;
        _logger = logger;
        _wake = new WakeSignal(clock);
        _failures = meters.Create(VaultMetrics.MeterName).CreateCounter<long>("vault.events.delivery.failures", unit: "{attempt}",
            description: "Webhook deliveries that failed (an answer other than 2xx, a timeout, no connection) and will be retried.");
    }

    /// <summary>The value of <see cref="SignatureHeader"/> for <paramref name="body"/> sent at <paramref name="unixSeconds"/>.</summary>
    public static string Sign(byte[] key, long unixSeconds, ReadOnlySpan<byte> body)
    {
        var t = unixSeconds.ToString(CultureInfo.InvariantCulture);
        var signed = new byte[t.Length + 1 + body.Length];
        Encoding.ASCII.GetBytes(t + ".", signed);
        body.CopyTo(signed.AsSpan(t.Length + 1));
        return $"t={t},v1={Convert.ToHexStringLower(HMACSHA256.HashData(key, signed))}";
    }

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        _settings = WebhookSettings.Read(_options.Value);
        if (_settings is null)
        {
            return;
        }
        _spool.Open();
        _spool.Added += _wake.Wake;
        _http = new HttpClient(new SocketsHttpHandler
        {
            // A webhook answers where it was asked; a redirect is a failed delivery.
            AllowAutoRedirect = false,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            ConnectTimeout = _options.Value.Webhook.Timeout,
        })
        {
            Timeout = _options.Value.Webhook.Timeout,
        };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("Vault-Webhook", "1"));
        // The URL without its query, which might hold a receiver's token.
        var shown = _settings.Url.GetLeftPart(UriPartial.Path);
        EventLog.WebhookStarted(_logger, shown, _spool.Count, _spool.Directory);
        await base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _spool.Added -= _wake.Wake;
        await base.StopAsync(cancellationToken);
    }

    public override void Dispose()
    {
        _http?.Dispose();
        _wake.Dispose();
        base.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var attempt = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (_spool.Oldest() is not { } next)
                {
                    // Woken by the next event spooled; the minute is a safety net.
                    await _wake.WaitUntilAsync(_clock.GetUtcNow().AddMinutes(1), stoppingToken);
                    continue;
                }
                var failure = await SendAsync(next.Id, next.Body, stoppingToken);
                if (failure is null)
                {
                    _spool.Remove(next.File);
                    attempt = 0;
                    continue;
                }
                attempt++;
                _failures.Add(1);
                var wait = Backoff(attempt);
                EventLog.DeliveryFailed(_logger, next.Id, attempt, failure, (long)wait.TotalMilliseconds);
                await _clock.ElapsedAsync(_clock.GetTimestamp(), wait, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // The spool itself (a delivered file that cannot be deleted), or a bug: logged with
                // its stack, and the worker goes on after a wait rather than stopping the vault.
                attempt++;
                var wait = Backoff(attempt);
                EventLog.WorkerFailed(_logger, (long)wait.TotalMilliseconds, ex);
                await _clock.ElapsedAsync(_clock.GetTimestamp(), wait, stoppingToken);
            }
        }
    }

    /// <returns>Null when the receiver acknowledged the event (2xx), else why not.</returns>
    private async Task<string?> SendAsync(string id, byte[] body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, _settings!.Url)
        {
            Content = new ByteArrayContent(body),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        request.Headers.Add(EventIdHeader, id);
        request.Headers.Add(SignatureHeader, Sign(_settings.Key, _clock.GetUtcNow().ToUnixTimeSeconds(), body));
        try
        {
            using var response = await _http!.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (response.IsSuccessStatusCode)
            {
                EventLog.Delivered(_logger, id, (int)response.StatusCode);
                return null;
            }
            return string.Create(CultureInfo.InvariantCulture, $"HTTP {(int)response.StatusCode}");
        }
        catch (HttpRequestException ex)
        {
            return ex.Message;
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return $"no answer within {_options.Value.Webhook.Timeout.TotalSeconds:0.###} s";
        }
    }

    /// <summary>MinBackoff × 2^(attempt−1), at most MaxBackoff, less up to half of it at random (so vaults restarted together do not retry together).</summary>
    private TimeSpan Backoff(int attempt)
    {
        var webhook = _options.Value.Webhook;
        var full = Math.Min(webhook.MinBackoff.Ticks * Math.Pow(2, Math.Min(attempt - 1, 30)), webhook.MaxBackoff.Ticks);
        var jitter = full / 2 * RandomNumberGenerator.GetInt32(0, 1001) / 1000;
        return TimeSpan.FromTicks((long)(full - jitter));
    }
}
