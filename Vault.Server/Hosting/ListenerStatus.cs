using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Vault.Server.Hosting;

/// <summary>
/// What is worth an operator's attention about the vault's own listener: plaintext on an address
/// beyond loopback (allowed only with <c>--insecure-plaintext</c>). Logged as a warning at start-up
/// and shown by <c>operator status</c> for as long as the server runs.
/// </summary>
public sealed class ListenerStatus(IOptions<VaultServerOptions> options, ILogger<ListenerStatus> logger) : IHostedService
{
    /// <summary>Why the listener is a risk, for <c>operator status</c>; null when it is not.</summary>
    public string? Warning { get; } = PlaintextBeyondLoopback(options.Value)
        ? $"plaintext HTTP/2 beyond loopback on {options.Value.Listen} (--insecure-plaintext): tokens and secrets cross the network unencrypted; serve TLS with --tls-cert and --tls-key"
        : null;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (Warning is not null)
        {
            HostingLog.PlaintextBeyondLoopback(logger, options.Value.Listen);
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    // TLS is served when the certificate files are given (VaultServerHost.Build refuses one without
    // the other); the address parses, or Build would have refused it before any service exists.
    private static bool PlaintextBeyondLoopback(VaultServerOptions o) =>
        string.IsNullOrEmpty(o.TlsCertFile) && string.IsNullOrEmpty(o.TlsKeyFile) && !ListenAddress.Parse(o.Listen).IsLoopback;
}
