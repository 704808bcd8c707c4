using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Vault.Rotators;
using Vault.Rotators.Passwords;

namespace Vault.Tests.Rotators;

/// <summary>What every rotator test needs besides its server.</summary>
internal static class RotatorTestKit
{
    public static string NewPassword() => PasswordGenerator.Generate(PasswordPolicy.Default);

    /// <summary>A target trusting the run's CA (the shared servers' certificates come from it).</summary>
    public static TargetConnection Target(string host, int port, string database = "", params (string Key, string Value)[] options) =>
        new(host, port, database, options.ToDictionary(o => o.Key, o => o.Value)) { CaCertificates = TestCertificates.Run.CaPem };

    /// <summary>A loopback port nothing listens on (bound and released; nothing else here takes ports at random).</summary>
    public static int FreePort()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)listener.LocalEndPoint!).Port;
    }

    /// <summary>Asserts the failure and that no password appears anywhere in it, inner exceptions included.</summary>
    public static async Task<RotatorException> FailsWith(RotatorFailure failure, Func<Task> action, params string[] secrets)
    {
        var ex = await Assert.ThrowsAsync<RotatorException>(action);
        Assert.True(failure == ex.Failure, $"expected {failure}, got {ex.Failure}: {ex.Message}");
        AssertNoSecret(ex.ToString(), secrets);
        return ex;
    }

    public static void AssertNoSecret(string text, params string[] secrets)
    {
        foreach (var secret in secrets)
        {
            Assert.False(text.Contains(secret, StringComparison.Ordinal), "a password leaked into: " + text);
        }
    }

    /// <summary>Runs <paramref name="action"/> and returns how long it took.</summary>
    public static async Task<TimeSpan> TimeAsync(Func<Task> action)
    {
        var clock = Stopwatch.StartNew();
        await action();
        return clock.Elapsed;
    }
}

/// <summary>A TCP server that accepts connections and never says a word: a hung server, for timeouts.</summary>
internal sealed class SilentServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<TcpClient> _clients = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public SilentServer()
    {
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                lock (_clients)
                {
                    _clients.Add(client);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        lock (_clients)
        {
            _clients.ForEach(c => c.Dispose());
        }
        _stop.Dispose();
    }
}
