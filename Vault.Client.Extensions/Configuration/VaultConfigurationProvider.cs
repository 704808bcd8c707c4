using Grpc.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace Vault.Client.Extensions.Configuration;

/// <summary>
/// KV secrets as configuration keys (see <see cref="VaultSecretMapping.KeyOf"/>), re-read every
/// <see cref="VaultConfigurationOptions.ReloadInterval"/>; a change replaces the data and fires the
/// reload token, so <c>IOptionsMonitor</c> and <c>IConfiguration</c> readers see it without a restart.
/// </summary>
/// <remarks>
/// The first load blocks (configuration providers load synchronously) and fails when the vault
/// cannot be read; a failed re-read keeps the last values and is logged.
/// </remarks>
public sealed partial class VaultConfigurationProvider : ConfigurationProvider, IDisposable
{
    private readonly VaultClient _client;
    private readonly bool _ownsClient;
    private readonly VaultConfigurationOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private Task? _polling;

    /// <summary>Creates the provider; nothing is read until <see cref="Load"/>.</summary>
    /// <param name="client">The client to read with.</param>
    /// <param name="ownsClient">Dispose the client with the provider.</param>
    /// <param name="options">The secrets and the reload interval.</param>
    public VaultConfigurationProvider(VaultClient client, bool ownsClient, VaultConfigurationOptions options)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        _client = client;
        _ownsClient = ownsClient;
        _options = options;
        _logger = client.LoggerFactory.CreateLogger<VaultConfigurationProvider>();
    }

    /// <summary>Reads every mapped secret now, and starts re-reading them in the background on the first call.</summary>
    /// <exception cref="RpcException">A secret could not be read (NotFound unless <see cref="VaultConfigurationOptions.Optional"/>, PermissionDenied, Unavailable, …).</exception>
    public override void Load()
    {
        // ConfigurationProvider.Load is synchronous; this is start-up (or an explicit Reload()).
        Data = ReadAsync(CancellationToken.None).GetAwaiter().GetResult();
        if (_polling is null && _options.ReloadInterval is { } interval && interval > TimeSpan.Zero)
        {
            _polling = Task.Run(() => PollAsync(interval, _stop.Token), CancellationToken.None);
        }
    }

    /// <summary>Stops re-reading, and disposes the client when the provider created it.</summary>
    public void Dispose()
    {
        _stop.Cancel();
        try
        {
            _polling?.GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            // The expected end of polling.
        }
        _stop.Dispose();
        if (_ownsClient)
        {
            _client.Dispose();
        }
    }

    private async Task PollAsync(TimeSpan interval, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(interval);
        while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
        {
            try
            {
                var fresh = await ReadAsync(stop).ConfigureAwait(false);
                if (!SameData(fresh, Data))
                {
                    Data = fresh;
                    Log.Reloaded(_logger, fresh.Count);
                    OnReload();
                }
            }
            catch (RpcException ex) when (!stop.IsCancellationRequested)
            {
                Log.ReloadFailed(_logger, ex.StatusCode, ex.Status.Detail);
            }
            catch (RpcException) when (stop.IsCancellationRequested)
            {
                // Disposed while a read was in flight: gRPC reports the cancelled call as
                // Cancelled, not as an OperationCanceledException. The expected end of polling.
                return;
            }
        }
    }

    private async Task<Dictionary<string, string?>> ReadAsync(CancellationToken cancellationToken)
    {
        var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var mapping in _options.Secrets)
        {
            Protocol.V1.GetSecretResponse secret;
            try
            {
                secret = await _client.GetSecretAsync(mapping.Path, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound && _options.Optional)
            {
                continue;
            }
            foreach (var (field, value) in secret.Data)
            {
                data[mapping.KeyOf(field)] = value;
            }
        }
        return data;
    }

    private static bool SameData(Dictionary<string, string?> fresh, IDictionary<string, string?> current) =>
        fresh.Count == current.Count
        && fresh.All(pair => current.TryGetValue(pair.Key, out var value) && string.Equals(value, pair.Value, StringComparison.Ordinal));

    private static partial class Log
    {
        [LoggerMessage(1301, LogLevel.Information, "Vault configuration reloaded: {Count} keys")]
        public static partial void Reloaded(ILogger logger, int count);

        [LoggerMessage(1302, LogLevel.Warning, "Vault configuration could not be re-read ({Code}: {Detail}); keeping the last values")]
        public static partial void ReloadFailed(ILogger logger, StatusCode code, string detail);
    }
}
