namespace Vault.Benchmarks.Load;

/// <summary>One kind of request, issued over and over by every client of a run.</summary>
internal interface IWorkload
{
    /// <summary>Sends one request and completes when its response has arrived.</summary>
    Task CallAsync(Random random, CancellationToken cancellationToken);
}
