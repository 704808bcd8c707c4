using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Vault.Server.Crypto;

namespace Vault.Server.Secrets;

/// <summary>
/// After a key rotation (and after every unseal), re-wraps data keys still under an older KEK
/// to the newest one, in small batches, so the store converges on a single key version.
/// </summary>
public sealed class RewrapService(KvEngine kv, SecurityBarrier barrier, ILogger<RewrapService> logger, Cluster.NodeRole role) : BackgroundService
{
    private const int BatchSize = 200;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private long _pending;
    private volatile bool _inProgress;

    /// <summary>Records left under an older key after the last pass (damaged ones included).</summary>
    public long PendingCount => Interlocked.Read(ref _pending);

    /// <summary>True from a request for a pass (rotate-key, unseal) until that pass ends.</summary>
    public bool InProgress => _inProgress;

    /// <summary>Asks for a pass now.</summary>
    public void Wake()
    {
        _inProgress = true;
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
        role.ActiveChanged += active =>
        {
            if (active)
            {
                Wake();
            }
        };
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
                // Only the active node writes; a standby's wake waits for it to become active.
                if (!barrier.IsSealed && role.IsActive)
                {
                    await PassAsync(stoppingToken);
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

    private async Task PassAsync(CancellationToken stoppingToken)
    {
        var stale = kv.StaleVersionIds();
        Interlocked.Exchange(ref _pending, stale.Count);
        var failed = 0;
        foreach (var chunk in stale.Chunk(BatchSize))
        {
            if (barrier.IsSealed)
            {
                return;
            }
            failed += (await kv.RewrapAsync(chunk, stoppingToken)).Count;
        }
        Interlocked.Exchange(ref _pending, failed);
        if (_wake.CurrentCount == 0)
        {
            _inProgress = false;
        }
        if (stale.Count > 0)
        {
            BarrierLog.Rewrapped(logger, stale.Count - failed, barrier.CurrentKeyVersion);
        }
        if (failed > 0)
        {
            BarrierLog.RewrapSkipped(logger, failed);
        }
    }

    public override void Dispose()
    {
        _wake.Dispose();
        base.Dispose();
    }
}
