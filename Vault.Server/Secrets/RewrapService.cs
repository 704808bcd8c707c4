using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Vault.Server.Crypto;

namespace Vault.Server.Secrets;

/// <summary>
/// After a key rotation (and after every unseal), re-wraps data keys still under an older KEK
/// to the newest one, in small batches, so the store converges on a single key version.
/// </summary>
public sealed class RewrapService(KvEngine kv, SecurityBarrier barrier, ILogger<RewrapService> logger) : BackgroundService
{
    private const int BatchSize = 200;
    private readonly SemaphoreSlim _wake = new(0, 1);

    /// <summary>Asks for a pass now.</summary>
    public void Wake()
    {
        try
        {
            _wake.Release();
        }
        catch (SemaphoreFullException)
        {
            // A pass is already requested.
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await _wake.WaitAsync(TimeSpan.FromMinutes(5), stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            try
            {
                var total = 0;
                int count;
                while (!barrier.IsSealed && (count = await kv.RewrapBatchAsync(BatchSize, stoppingToken)) > 0)
                {
                    total += count;
                }
                if (total > 0)
                {
                    BarrierLog.Rewrapped(logger, total, barrier.CurrentKeyVersion);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Never take the server down: log with the stack and try again on the next wake.
                BarrierLog.RewrapFailed(logger, ex);
            }
        }
    }

    public override void Dispose()
    {
        _wake.Dispose();
        base.Dispose();
    }
}
