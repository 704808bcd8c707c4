using System.Net;
using System.Net.Sockets;
using Vault.Server;
using Vault.Server.Hosting;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Hosting;

public sealed class HostingTests
{
    [Fact]
    public void PlaintextOnANonLoopbackAddress_IsRefusedWithoutTheExplicitSwitch()
    {
        var dir = Directory.CreateTempSubdirectory("vault-host-").FullName;
        var ex = Assert.Throws<ValidationException>(() => VaultServerHost.Build(["--data-dir", dir, "--listen", "0.0.0.0:0"]));
        Assert.Contains("refusing plaintext on non-loopback address", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PlaintextOnANonLoopbackAddress_IsServedWithTheExplicitSwitch()
    {
        var dir = Directory.CreateTempSubdirectory("vault-host-").FullName;
        await using var app = VaultServerHost.Build(["--data-dir", dir, "--listen", "0.0.0.0:0", "--insecure-plaintext"]);
        await app.StartAsync();
        await app.StopAsync();
    }

    [Fact]
    public void WithoutADataDirectory_StartupIsRefusedWithAClearMessage()
    {
        var ex = Assert.Throws<ValidationException>(() => VaultServerHost.Build([]));
        Assert.StartsWith("data-dir: is required", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DevRootTokenWithoutDev_IsRefused()
    {
        var dir = Directory.CreateTempSubdirectory("vault-host-").FullName;
        var ex = Assert.Throws<ValidationException>(() => VaultServerHost.Build(["--data-dir", dir, "--dev-root-token", "x"]));
        Assert.StartsWith("dev-root-token:", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DevMode_PrintsTheRootTokenItWasGiven_AndServesWithIt()
    {
        await using var server = new VaultProcess(Directory.CreateTempSubdirectory("vault-dev-").FullName);
        await server.StartAsync("--dev", "--dev-root-token", "dev-token-for-test");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!server.Output.Contains("Root token:", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
        Assert.Contains("Root token:        dev-token-for-test", server.Output, StringComparison.Ordinal);
        var kv = new Protocol.V1.KvService.KvServiceClient(server.Channel);
        var auth = new global::Grpc.Core.Metadata { { "authorization", "Bearer dev-token-for-test" } };
        await kv.PutAsync(new Protocol.V1.PutSecretRequest { Path = "dev/check", Data = { ["k"] = "v" } }, auth);
        Assert.Equal("v", (await kv.GetAsync(new Protocol.V1.GetSecretRequest { Path = "dev/check" }, auth)).Data["k"]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AddressInUse_IsOneLineOnStderr_ExitsNonZero_AndLeavesNothingBehind(bool dev)
    {
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var address = $"127.0.0.1:{((IPEndPoint)occupant.LocalEndpoint).Port}";
        // The child's temporary directory is ours, so whatever it leaves there is visible.
        var tmp = Directory.CreateTempSubdirectory("vault-tmp-").FullName;
        var dataDir = Directory.CreateTempSubdirectory("vault-host-").FullName;
        string[] args = dev ? ["--dev", "--listen", address] : ["--data-dir", dataDir, "--listen", address];

        var exited = await VaultProcess.RunToExitAsync(new Dictionary<string, string> { ["TMPDIR"] = tmp }, args);

        Assert.NotEqual(0, exited.ExitCode);
        var stderr = exited.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var line = Assert.Single(stderr);
        Assert.Contains(address, line, StringComparison.Ordinal);
        Assert.Contains("in use", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", exited.Stdout + exited.Stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(tmp));
        Directory.Delete(tmp);
    }

    [Theory]
    [InlineData("nonsense", "metrics-listen: 'nonsense' is not HOST:PORT")]
    [InlineData("example.org:9200", "metrics-listen: 'example.org' is not an IP address")]
    public async Task BadMetricsListen_IsOneLineNamingIt_ExitsNonZero(string value, string message)
    {
        var exited = await VaultProcess.RunToExitAsync(new Dictionary<string, string>(), "--dev", "--listen", "127.0.0.1:0", "--metrics-listen", value);

        Assert.NotEqual(0, exited.ExitCode);
        var line = Assert.Single(exited.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(message, line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", exited.Stdout + exited.Stderr, StringComparison.Ordinal);
    }
}
