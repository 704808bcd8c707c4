namespace Vault.Benchmarks.Hosting;

/// <summary>Scrapes a vault's metrics endpoint once a second, as a (busy) Prometheus would, until disposed.</summary>
internal sealed class MetricsScraper : IAsyncDisposable
{
    private readonly HttpClient _http = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _scraping;

    public MetricsScraper(Uri endpoint) => _scraping = ScrapeAsync(endpoint);

    /// <summary>Scrapes that answered 200.</summary>
    public int Scrapes { get; private set; }

    private async Task ScrapeAsync(Uri endpoint)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                using var response = await _http.GetAsync(endpoint, _stop.Token);
                await response.Content.ReadAsByteArrayAsync(_stop.Token);
                if (response.IsSuccessStatusCode)
                {
                    Scrapes++;
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _scraping;
        _stop.Dispose();
        _http.Dispose();
    }
}
