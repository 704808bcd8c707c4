using System.Diagnostics;
using System.Globalization;

namespace Vault.Tests.Testing;

public sealed class WatchdogTests
{
    // What happens when the test process is killed before disposing a server: the kernel closes
    // the watchdog's pipe, and the watchdog stops the server and deletes its directory.
    [Fact]
    public async Task WhenItsOwnerGoesAway_StopsTheServerAndDeletesTheDirectory()
    {
        var directory = await ServerHost.CreateDirectoryAsync("watchdog-test", null, CancellationToken.None);
        var pidFile = Path.Combine(directory, "server.pid");
        using var server = Process.Start(new ProcessStartInfo("sleep", "300") { UseShellExecute = false })!;
        await File.WriteAllTextAsync(pidFile, server.Id.ToString(CultureInfo.InvariantCulture));
        using var watchdog = Watchdog.Start(directory, pidFile, Signal.Term);

        watchdog.Trigger();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await watchdog.WaitForExitAsync(timeout.Token);
        await server.WaitForExitAsync(timeout.Token);

        Assert.True(server.HasExited);
        Assert.False(Directory.Exists(directory));
    }

    [Fact]
    public async Task Disarmed_LeavesTheServerAndDirectoryAlone()
    {
        var directory = await ServerHost.CreateDirectoryAsync("watchdog-test", null, CancellationToken.None);
        var pidFile = Path.Combine(directory, "server.pid");
        using var server = Process.Start(new ProcessStartInfo("sleep", "300") { UseShellExecute = false })!;
        try
        {
            await File.WriteAllTextAsync(pidFile, server.Id.ToString(CultureInfo.InvariantCulture));
            var watchdog = Watchdog.Start(directory, pidFile, Signal.Term);

            watchdog.Disarm();
            await Task.Delay(200);

            Assert.False(server.HasExited);
            Assert.True(Directory.Exists(directory));
        }
        finally
        {
            server.Kill();
            Directory.Delete(directory, recursive: true);
        }
    }
}
