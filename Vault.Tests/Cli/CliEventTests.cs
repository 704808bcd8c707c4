using System.Text.Json;
using Vault.Client;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Cli;

/// <summary><c>vaultctl events watch</c>: resuming after an event, JSON lines, the end a seal brings, Ctrl+C.</summary>
public sealed class CliEventTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromMinutes(1);

    [Fact]
    public async Task EventsWatch_ResumesAfterAnEvent_PrintsJsonLines_AndASealEndsItWithOneLine()
    {
        // A vault of its own: the test seals it.
        await using var vault = await TestVault.StartInitializedAsync();
        using var client = new VaultClient(new VaultClientOptions { Address = vault.Address, Token = vault.RootToken });
        var sealedId = await SealAndUnsealAsync(client, vault);

        await using var watch = new VaultCtl(vault.Address, vault.RootToken).Start("events", "watch", "--json", "--after", sealedId);
        var unsealed = JsonDocument.Parse(await watch.WaitForLineAsync(l => l.Contains("seal.unsealed", StringComparison.Ordinal), Generous)).RootElement;
        await client.SealAsync();
        var sealedLine = JsonDocument.Parse(await watch.WaitForLineAsync(l => l.Contains("seal.sealed", StringComparison.Ordinal), Generous)).RootElement;
        var exited = await watch.WaitForExitAsync(Generous);

        Assert.Equal(32, unsealed.GetProperty("id").GetString()!.Length);
        Assert.True(unsealed.TryGetProperty("time", out _));
        Assert.Equal(JsonValueKind.Object, unsealed.GetProperty("attributes").ValueKind);
        Assert.Equal("seal.sealed", sealedLine.GetProperty("type").GetString());
        Assert.Equal(2, exited.ExitCode);
        Assert.Equal("vaultctl: FailedPrecondition: vault is sealed", exited.StdErr.TrimEnd('\n', '\r'));
    }

    [Fact]
    public async Task EventsWatch_ForPeople_PrintsALinePerEvent_AndCtrlCEndsItWithExitZero()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        using var client = new VaultClient(new VaultClientOptions { Address = vault.Address, Token = vault.RootToken });
        var sealedId = await SealAndUnsealAsync(client, vault);

        await using var watch = new VaultCtl(vault.Address, vault.RootToken).Start("events", "watch", "--type", "seal.", "--after", sealedId);
        var line = await watch.WaitForLineAsync(l => l.Contains("seal.unsealed", StringComparison.Ordinal), Generous);
        var interrupted = await watch.InterruptAsync(Generous);

        Assert.Matches(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\S*\s+seal\.unsealed\s+[0-9a-f]{32}$", line);
        Assert.Equal(0, interrupted.ExitCode);
        Assert.Equal("", interrupted.StdErr);
    }

    /// <summary>Seals (seen by a watcher) and unseals; returns the seal event's id.</summary>
    private static async Task<string> SealAndUnsealAsync(VaultClient client, TestVault vault)
    {
        string? sealedId = null;
        await using (var items = client.WatchEventsAsync().GetAsyncEnumerator())
        {
            Assert.True(await items.MoveNextAsync());
            Assert.True(items.Current.Live);
            await client.SealAsync();
            Assert.True(await items.MoveNextAsync());
            sealedId = items.Current.Event.Id;
        }
        await vault.UnsealAsync();
        return sealedId;
    }
}
