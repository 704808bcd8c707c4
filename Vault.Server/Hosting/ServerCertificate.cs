using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Vault.Server.Hosting;

/// <summary>
/// The certificate the listener serves, from a PEM certificate file and key file, read again when
/// either file changes so that an operator rotates the certificate without a restart: connections
/// made after the change get the new one, connections already made keep theirs.
/// </summary>
/// <remarks>
/// <see cref="Current"/> is asked on every TLS handshake and never waits for a file: at most once
/// a second it starts a check on the thread pool, which compares the files' sizes and write times
/// with those last read and reloads only if they differ. A reload that fails (a file half-written,
/// a key that does not match the certificate, a file missing for a moment during a replace) keeps
/// the previous certificate served, logs a warning and is tried again at the next change.
/// </remarks>
public sealed class ServerCertificate
{
    private const long CheckIntervalMs = 1000;

    private readonly string _certFile;
    private readonly string _keyFile;
    private readonly ILogger<ServerCertificate> _logger;
    private X509Certificate2 _current;
    private FileStamp _read;
    private long _nextCheckAt;
    private int _checking;

    /// <param name="certFile">The PEM certificate file.</param>
    /// <param name="keyFile">The PEM private key file.</param>
    /// <param name="initial">The certificate as read at start-up by <see cref="Read"/> (whose errors end start-up).</param>
    /// <param name="logger">Where reloads and failed reloads are logged.</param>
    public ServerCertificate(string certFile, string keyFile, X509Certificate2 initial, ILogger<ServerCertificate> logger)
    {
        _certFile = certFile;
        _keyFile = keyFile;
        _logger = logger;
        _current = initial;
        // Stamped after the start-up read: a change between the two is read at the first check
        // again, which does no harm.
        _read = FileStamp.Of(certFile, keyFile);
        _nextCheckAt = Environment.TickCount64 + CheckIntervalMs;
    }

    /// <summary>The certificate to serve now; starts a check of the files if the last is a second old.</summary>
    public X509Certificate2 Current
    {
        get
        {
            // The real clock, not the vault's TimeProvider: this paces file system calls, it decides nothing.
            if (Environment.TickCount64 >= Volatile.Read(ref _nextCheckAt) && Interlocked.Exchange(ref _checking, 1) == 0)
            {
                _ = Task.Run(Check);
            }
            return Volatile.Read(ref _current);
        }
    }

    /// <summary>Reads the PEM pair as a certificate with its private key, usable by SslStream.</summary>
    /// <exception cref="IOException">A file cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">A file may not be read.</exception>
    /// <exception cref="CryptographicException">Not PEM, or the key does not match the certificate.</exception>
    public static X509Certificate2 Read(string certFile, string keyFile)
    {
        using var pem = X509Certificate2.CreateFromPemFile(certFile, keyFile);
        // Export/import so the private key is usable by SslStream on every platform.
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }

    private void Check()
    {
        try
        {
            // Stamped before reading: a file changed while it is read is read again at the next check.
            var stamp = FileStamp.Of(_certFile, _keyFile);
            if (stamp == _read)
            {
                return;
            }
            _read = stamp;
            X509Certificate2 loaded;
            try
            {
                loaded = Read(_certFile, _keyFile);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
            {
                HostingLog.CertificateReloadFailed(_logger, _certFile, _keyFile, ex.Message, Volatile.Read(ref _current).Thumbprint);
                return;
            }
            // The previous certificate is not disposed: a handshake that was handed it may still be
            // using it, and a rotation is rare enough that keeping it costs nothing that matters.
            Volatile.Write(ref _current, loaded);
            HostingLog.CertificateReloaded(_logger, _certFile, loaded.Subject, loaded.Thumbprint, loaded.NotAfter.ToUniversalTime());
        }
        finally
        {
            Volatile.Write(ref _nextCheckAt, Environment.TickCount64 + CheckIntervalMs);
            Volatile.Write(ref _checking, 0);
        }
    }

    /// <summary>What tells a changed file from the one read: its size and last write time (-1 and <see cref="DateTime.MinValue"/> while missing).</summary>
    private readonly record struct FileStamp(long CertLength, DateTime CertWritten, long KeyLength, DateTime KeyWritten)
    {
        public static FileStamp Of(string certFile, string keyFile)
        {
            var cert = new FileInfo(certFile);
            var key = new FileInfo(keyFile);
            return new FileStamp(
                cert.Exists ? cert.Length : -1, cert.Exists ? cert.LastWriteTimeUtc : DateTime.MinValue,
                key.Exists ? key.Length : -1, key.Exists ? key.LastWriteTimeUtc : DateTime.MinValue);
        }
    }
}
