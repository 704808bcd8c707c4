using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Vault.Server.Hosting;
using Vault.Tests.Cli;
using Vault.Tests.Security;

namespace Vault.Tests.Hosting;

/// <summary>
/// The vault's own listener: TLS 1.2 or later only, a certificate replaced on disk served to new
/// connections without a restart, and a warning (log and <c>operator status</c>) while it serves
/// plaintext beyond loopback.
/// </summary>
public sealed class ListenerTlsTests
{
    // Waiting for an event (a reload the server does at its next check, at most a second after a
    // handshake asks), not a timing: a loaded machine only makes it take longer.
    private static readonly TimeSpan EventWait = TimeSpan.FromSeconds(10);

    private const byte Handshake = 0x16;
    private const byte Alert = 0x15;
    private const byte ServerHello = 0x02;
    private const byte ProtocolVersionAlert = 70;

    [Fact]
    public async Task Tls11ClientHello_IsRefused_WhileTls12IsServed()
    {
        using var ca = new TestCertificates();
        using var files = CertificateFiles.Write(ca.IssueServer());
        await using var vault = await RunningVault.StartAsync("--tls-cert", files.Cert, "--tls-key", files.Key);

        // Built by hand: OpenSSL 3 may refuse to send a TLS 1.1 ClientHello at all, so SslStream
        // asked for Tls11 would fail in the client and prove nothing about the server.
        var tls11 = await FirstAnswerAsync(vault.Port, ClientHello(0x0302, [0x002F, 0x0035, 0xC013, 0xC014], tls12Extensions: false));
        var tls12 = await FirstAnswerAsync(vault.Port, ClientHello(0x0303, [0xC02F, 0xC030, 0x009C, 0x002F], tls12Extensions: true));
        var negotiated = await HandshakeAsync(vault.Port, ca, SslProtocols.Tls12);

        // protocol_version, not just any refusal: Debian's OpenSSL 3.0 already refuses TLS 1.1 at its
        // default security level, with handshake_failure (40) — whether the listener leaves the
        // versions to it or enables TLS 1.1 explicitly. Only the listener's own minimum of TLS 1.2
        // says protocol_version (70), which is what keeps TLS 1.1 out on a machine that allows it.
        Assert.True(tls11 is { Type: Alert, Detail: ProtocolVersionAlert } or null,
            $"a TLS 1.1 ClientHello must be answered with a protocol_version alert (or a closed connection), got {tls11}");
        Assert.True(tls12 is { Type: Handshake, Detail: ServerHello }, $"the same ClientHello as TLS 1.2 must get a ServerHello, got {tls12?.ToString() ?? "a closed connection"}");
        Assert.Equal(SslProtocols.Tls12, negotiated.Protocol);
        Assert.Equal(Thumbprint(files.Pem), negotiated.Thumbprint);
    }

    [Fact]
    public async Task ReplacedCertificateFiles_AreServedToNewConnections_AndAPairThatDoesNotLoadKeepsTheOldOne()
    {
        using var ca = new TestCertificates();
        var a = ca.IssueServer("vault-a");
        var b = ca.IssueServer("vault-b");
        using var files = CertificateFiles.Write(a);
        await using var vault = await RunningVault.StartAsync("--tls-cert", files.Cert, "--tls-key", files.Key);
        var first = (await HandshakeAsync(vault.Port, ca)).Thumbprint;

        // Each step replaces one file whole (write beside it, rename over it), so the server sees
        // exactly one change per step and logs exactly one failed reload for each bad one.
        files.Replace(files.Cert, b.CertificatePem[..(b.CertificatePem.Length / 2)]);
        await WaitForAsync(vault, ca, () => vault.Log.Count(l => l.Contains("[6003]", StringComparison.Ordinal)) == 1, "the failed reload of a half-written certificate");
        var afterHalfWritten = (await HandshakeAsync(vault.Port, ca)).Thumbprint;

        files.Replace(files.Cert, b.CertificatePem);
        await WaitForAsync(vault, ca, () => vault.Log.Count(l => l.Contains("[6003]", StringComparison.Ordinal)) == 2, "the failed reload of B's certificate with A's key");
        var afterMismatch = (await HandshakeAsync(vault.Port, ca)).Thumbprint;

        files.Replace(files.Key, b.KeyPem);
        await WaitForAsync(vault, ca, async () => (await HandshakeAsync(vault.Port, ca)).Thumbprint == Thumbprint(b), "certificate B served to a new connection");
        // The server logs the reload after it swaps the certificate in: a handshake can see B first.
        await WaitForAsync(vault, ca, () => vault.Log.Any(l => l.Contains("[6002]", StringComparison.Ordinal) && l.Contains(Thumbprint(b), StringComparison.Ordinal)), "the reload of certificate B in the log");

        Assert.Equal(Thumbprint(a), first);
        Assert.Equal(Thumbprint(a), afterHalfWritten);
        Assert.Equal(Thumbprint(a), afterMismatch);
        Assert.Contains(vault.Log, l => l.StartsWith("Warning", StringComparison.Ordinal) && l.Contains("[6003]", StringComparison.Ordinal) && l.Contains($"still serving thumbprint {Thumbprint(a)}", StringComparison.Ordinal));
        Assert.Contains(vault.Log, l => l.Contains("[6002]", StringComparison.Ordinal) && l.Contains(Thumbprint(b), StringComparison.Ordinal));
        Assert.DoesNotContain(vault.Log, l => l.Contains("PRIVATE KEY", StringComparison.Ordinal));
    }

    [Fact]
    public async Task PlaintextBeyondLoopback_IsAWarningInTheLogAtStartAndInOperatorStatus()
    {
        await using var vault = await RunningVault.StartAsync("--listen", "0.0.0.0:0", "--insecure-plaintext");
        var ctl = new VaultCtl($"http://127.0.0.1:{vault.Port}");

        var json = (await ctl.RunAsync("operator", "status", "--json")).Json();
        var table = (await ctl.RunAsync("operator", "status")).Ok();

        Assert.StartsWith("plaintext HTTP/2 beyond loopback on 0.0.0.0:0 (--insecure-plaintext)", json.GetProperty("listener_warning").GetString(), StringComparison.Ordinal);
        Assert.Matches("(?m)^Listener Warning +plaintext HTTP/2 beyond loopback on 0\\.0\\.0\\.0:0 ", table);
        var line = Assert.Single(vault.Log, l => l.Contains("[6001]", StringComparison.Ordinal));
        Assert.StartsWith("Warning ", line, StringComparison.Ordinal);
        Assert.Contains("Serving plaintext HTTP/2 beyond loopback on 0.0.0.0:0", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task PlaintextOnLoopback_OrTlsBeyondLoopback_HasNoWarning(bool tls)
    {
        using var ca = new TestCertificates();
        using var files = CertificateFiles.Write(ca.IssueServer());
        await using var vault = tls
            ? await RunningVault.StartAsync("--listen", "0.0.0.0:0", "--tls-cert", files.Cert, "--tls-key", files.Key)
            : await RunningVault.StartAsync("--listen", "127.0.0.1:0");
        var ctl = new VaultCtl($"{(tls ? "https" : "http")}://127.0.0.1:{vault.Port}");
        ctl.Environment["VAULT_CACERT"] = tls ? files.CaFile(ca) : null;

        var json = (await ctl.RunAsync("operator", "status", "--json")).Json();
        var table = (await ctl.RunAsync("operator", "status")).Ok();

        Assert.Equal("", json.GetProperty("listener_warning").GetString());
        Assert.Matches("(?m)^Sealed +true$", table);
        Assert.DoesNotContain("Listener Warning", table, StringComparison.Ordinal);
        Assert.DoesNotContain(vault.Log, l => l.Contains("[6001]", StringComparison.Ordinal));
    }

    private static string Thumbprint(PemCertificate pem)
    {
        using var certificate = X509Certificate2.CreateFromPem(pem.CertificatePem);
        return certificate.Thumbprint;
    }

    private static async Task WaitForAsync(RunningVault vault, TestCertificates ca, Func<bool> happened, string what) =>
        await WaitForAsync(vault, ca, () => Task.FromResult(happened()), what);

    /// <summary>Makes a new TLS connection (each handshake lets the server check its files) until <paramref name="happened"/>.</summary>
    private static async Task WaitForAsync(RunningVault vault, TestCertificates ca, Func<Task<bool>> happened, string what)
    {
        var waited = Stopwatch.StartNew();
        while (!await happened())
        {
            Assert.True(waited.Elapsed < EventWait, $"waited {EventWait.TotalSeconds} s for {what}; the server's log:\n{string.Join('\n', vault.Log)}");
            await HandshakeAsync(vault.Port, ca);
            await Task.Delay(100);
        }
    }

    /// <summary>A TLS handshake as a client that trusts only <paramref name="ca"/>.</summary>
    private static async Task<(SslProtocols Protocol, string Thumbprint)> HandshakeAsync(int port, TestCertificates ca, SslProtocols protocols = SslProtocols.None)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        await using var ssl = new SslStream(tcp.GetStream());
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = "127.0.0.1",
            EnabledSslProtocols = protocols,
            CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck },
        };
        options.CertificateChainPolicy.CustomTrustStore.Add(X509Certificate2.CreateFromPem(ca.CaPem));
        using var timeout = new CancellationTokenSource(EventWait);
        await ssl.AuthenticateAsClientAsync(options, timeout.Token);
        return (ssl.SslProtocol, ssl.RemoteCertificate!.GetCertHashString());
    }

    /// <summary>The server's first record: its type and the byte after the header (an alert's description, a handshake's type); null if it closed the connection.</summary>
    private static async Task<Answer?> FirstAnswerAsync(int port, byte[] clientHello)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        var stream = tcp.GetStream();
        using var timeout = new CancellationTokenSource(EventWait);
        await stream.WriteAsync(clientHello, timeout.Token);
        var record = new byte[7];
        var read = 0;
        while (read < record.Length)
        {
            var n = await stream.ReadAsync(record.AsMemory(read), timeout.Token);
            if (n == 0)
            {
                break;
            }
            read += n;
        }
        if (read < 6)
        {
            return null;
        }
        // An alert is level then description; a handshake message is its type first.
        return record[0] == Alert ? new Answer(record[0], record[6]) : new Answer(record[0], record[5]);
    }

    private sealed record Answer(byte Type, byte Detail);

    /// <summary>
    /// A ClientHello record offering <paramref name="version"/> and <paramref name="suites"/>, no
    /// session id, null compression; for TLS 1.2 the extensions OpenSSL needs to pick an ECDHE suite
    /// (supported_groups, ec_point_formats, signature_algorithms).
    /// </summary>
    private static byte[] ClientHello(ushort version, ushort[] suites, bool tls12Extensions)
    {
        var body = new List<byte>();
        Add16(body, version);
        body.AddRange(RandomNumberGenerator.GetBytes(32));
        body.Add(0);
        Add16(body, suites.Length * 2);
        foreach (var suite in suites)
        {
            Add16(body, suite);
        }
        body.AddRange([1, 0]);
        if (tls12Extensions)
        {
            var extensions = new List<byte>();
            Extension(extensions, 0x000A, [0x00, 0x06, 0x00, 0x1D, 0x00, 0x17, 0x00, 0x18]);
            Extension(extensions, 0x000B, [0x01, 0x00]);
            Extension(extensions, 0x000D, [0x00, 0x0A, 0x08, 0x04, 0x04, 0x01, 0x05, 0x01, 0x08, 0x05, 0x04, 0x03]);
            Add16(body, extensions.Count);
            body.AddRange(extensions);
        }
        List<byte> handshake = [0x01, (byte)(body.Count >> 16), (byte)(body.Count >> 8), (byte)body.Count, .. body];
        // The record layer says TLS 1.0, as real clients do; the version offered is the ClientHello's.
        List<byte> record = [Handshake, 0x03, 0x01];
        Add16(record, handshake.Count);
        record.AddRange(handshake);
        return [.. record];
    }

    private static void Extension(List<byte> to, ushort type, byte[] data)
    {
        Add16(to, type);
        Add16(to, data.Length);
        to.AddRange(data);
    }

    private static void Add16(List<byte> to, int value)
    {
        to.Add((byte)(value >> 8));
        to.Add((byte)value);
    }

    /// <summary>A certificate and key as PEM files in a directory of the test's own.</summary>
    private sealed record CertificateFiles(string Directory, string Cert, string Key, PemCertificate Pem) : IDisposable
    {
        public static CertificateFiles Write(PemCertificate pem)
        {
            var directory = System.IO.Directory.CreateTempSubdirectory("vault-listener-tls-").FullName;
            var files = new CertificateFiles(directory, Path.Combine(directory, "server.crt"), Path.Combine(directory, "server.key"), pem);
            File.WriteAllText(files.Cert, pem.CertificatePem);
            File.WriteAllText(files.Key, pem.KeyPem);
            return files;
        }

        /// <summary>Replaces <paramref name="path"/> whole, as an operator's deployment should: written beside it, renamed over it.</summary>
        public void Replace(string path, string content)
        {
            var next = path + ".next";
            File.WriteAllText(next, content);
            File.Move(next, path, overwrite: true);
        }

        public string CaFile(TestCertificates ca)
        {
            var path = Path.Combine(Directory, "ca.crt");
            File.WriteAllText(path, ca.CaPem);
            return path;
        }

        public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
    }

    /// <summary>A vault server on its own data directory, started as the binary starts it, with its log captured.</summary>
    private sealed class RunningVault : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly CapturingLoggerProvider _log;
        private readonly string _dataDir;

        private RunningVault(WebApplication app, CapturingLoggerProvider log, string dataDir, int port)
        {
            _app = app;
            _log = log;
            _dataDir = dataDir;
            Port = port;
        }

        public int Port { get; }

        public IReadOnlyCollection<string> Log => [.. _log.Lines];

        public static async Task<RunningVault> StartAsync(params string[] args)
        {
            var dataDir = Directory.CreateTempSubdirectory("vault-listener-").FullName;
            var log = new CapturingLoggerProvider();
            string[] all = ["--data-dir", dataDir, "--listen", "127.0.0.1:0", "--Vault:ReservedDiskBytes=1048576", .. args];
            var app = VaultServerHost.Build(all, builder =>
            {
                builder.Logging.ClearProviders();
                builder.Logging.AddProvider(log);
            });
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
            return new RunningVault(app, log, dataDir, new Uri(address).Port);
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            Directory.Delete(_dataDir, recursive: true);
        }
    }
}
