using Microsoft.Extensions.Logging;

namespace Vault.Server.Hosting;

/// <summary>Listener log messages (event ids 6000–6099). File names, addresses and thumbprints only — never key material.</summary>
internal static partial class HostingLog
{
    [LoggerMessage(6001, LogLevel.Warning, "Serving plaintext HTTP/2 beyond loopback on {Listen} (--insecure-plaintext): tokens and secrets cross the network unencrypted; serve TLS with --tls-cert and --tls-key")]
    public static partial void PlaintextBeyondLoopback(ILogger logger, string listen);

    [LoggerMessage(6002, LogLevel.Information, "TLS certificate reloaded from {CertFile}: {Subject}, thumbprint {Thumbprint}, valid until {NotAfter:O}")]
    public static partial void CertificateReloaded(ILogger logger, string certFile, string subject, string thumbprint, DateTime notAfter);

    [LoggerMessage(6003, LogLevel.Warning, "TLS certificate in {CertFile} and {KeyFile} changed but cannot be loaded ({Reason}); still serving thumbprint {Thumbprint}, will retry when the files change again")]
    public static partial void CertificateReloadFailed(ILogger logger, string certFile, string keyFile, string reason, string thumbprint);
}
