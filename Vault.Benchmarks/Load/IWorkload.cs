namespace Vault.Benchmarks.Load;

/// <summary>One kind of request, issued over and over by every client of a run.</summary>
internal interface IWorkload
{
    /// <summary>Sends one request and completes when its response has arrived.</summary>
    /// <param name="clientIndex">Which client (0 to clients − 1) calls: some workloads give each client its own target or connection.</param>
    /// <exception cref="Grpc.Core.RpcException">The call failed (counted as an error).</exception>
    /// <exception cref="WorkloadException">The call was answered but did not do its job (counted as an error).</exception>
    Task CallAsync(int clientIndex, Random random, CancellationToken cancellationToken);
}

/// <summary>A call that the server answered without an error status but that did not do what was asked (e.g. a rotation that failed).</summary>
internal sealed class WorkloadException(string message) : Exception(message);
