using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Vault.Tests.Cli;

/// <summary>Every call has a deadline: a server that takes the connection and never answers ends the command in one line.</summary>
public sealed class CliTimeoutTests
{
    [Fact]
    public async Task SilentServer_WithTimeoutFlag_IsOneLineNamingTheServerAndTheWait()
    {
        await using var server = SilentServer.Start();
        var started = Stopwatch.StartNew();

        var result = await new VaultCtl(server.Address).RunAsync("kv", "get", "apps/x", "--timeout", "2s");

        result.OneLineError(3, $"{server.Address} did not answer within 2s");
        Assert.True(server.Accepted > 0, "the client never connected");
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(30), $"took {started.Elapsed}");
    }

    [Fact]
    public async Task SilentServer_WithVaultClientTimeout_InPlainSeconds_GivesUpInTime()
    {
        await using var server = SilentServer.Start();
        var vaultctl = new VaultCtl(server.Address);
        vaultctl.Environment["VAULT_CLIENT_TIMEOUT"] = "1";

        var result = await vaultctl.RunAsync("operator", "status");

        result.OneLineError(3, $"{server.Address} did not answer within 1s");
    }

    [Fact]
    public async Task TimeoutFlag_OverridesVaultClientTimeout()
    {
        await using var server = SilentServer.Start();
        var vaultctl = new VaultCtl(server.Address);
        vaultctl.Environment["VAULT_CLIENT_TIMEOUT"] = "10m";

        var result = await vaultctl.RunAsync("policy", "list", "--timeout", "1s");

        result.OneLineError(3, "did not answer within 1s");
    }

    [Fact]
    public async Task AuditTailFollow_EndsWhenAPollIsNotAnswered()
    {
        await using var server = SilentServer.Start();

        var result = await new VaultCtl(server.Address).RunAsync("audit", "tail", "--follow", "--timeout", "1s");

        result.OneLineError(3, $"{server.Address} did not answer within 1s");
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-5")]
    [InlineData("soon")]
    [InlineData("5x")]
    public async Task BadTimeoutFlag_IsOneLineUsageError(string value)
    {
        var result = await new VaultCtl("http://127.0.0.1:1").RunAsync("operator", "status", "--timeout", value);

        result.OneLineError(1, $"--timeout: '{value}' is not a duration");
    }

    [Fact]
    public async Task BadVaultClientTimeout_IsOneLineUsageError()
    {
        var vaultctl = new VaultCtl("http://127.0.0.1:1");
        vaultctl.Environment["VAULT_CLIENT_TIMEOUT"] = "1 minute";

        var result = await vaultctl.RunAsync("operator", "status");

        result.OneLineError(1, "VAULT_CLIENT_TIMEOUT: '1 minute' is not a duration");
    }

    /// <summary>A loopback listener that accepts every connection and never sends a byte.</summary>
    private sealed class SilentServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly List<TcpClient> _clients = [];
        private readonly Task _accepting;
        private int _accepted;

        private SilentServer()
        {
            _listener.Start();
            Address = $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
            _accepting = AcceptAsync();
        }

        public string Address { get; }

        public int Accepted => Volatile.Read(ref _accepted);

        public static SilentServer Start() => new();

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            try
            {
                await _accepting;
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // Stop ends the pending accept.
            }
            foreach (var client in _clients)
            {
                client.Dispose();
            }
            _listener.Dispose();
        }

        private async Task AcceptAsync()
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync();
                _clients.Add(client);
                Interlocked.Increment(ref _accepted);
            }
        }
    }
}
