using System.Text;
using Grpc.Core;
using Vault.Client;
using Vault.Protocol.V1;
using Vault.Testing;
using Vault.Testing.Servers;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Telemetry;

/// <summary>
/// The outbound webhook against a real HTTP receiver on loopback: signed JSON bodies a receiver
/// verifies with its own HMAC, retries while the receiver refuses, a spool on disk that survives a
/// restart of the vault while the receiver is down, and start-up refused for bad settings.
/// </summary>
public sealed class WebhookTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task Webhook_DeliversSignedJson_ThatTheReceiverVerifies_AndRetriesWhileItRefuses()
    {
        var (key, keyFile) = NewKey();
        await using var receiver = await WebhookReceiver.StartAsync(key);
        receiver.Refusing = true;
        await using var vault = await TestVault.StartInitializedAsync(WebhookArgs(receiver.Url, keyFile));

        await vault.System.SealAsync(new SealRequest(), vault.As());
        await vault.UnsealAsync();
        // Refused at least twice (retried with backoff), then let through.
        await WaitUntilAsync(() => receiver.Requests.Count >= 2, "two refused attempts");
        receiver.Refusing = false;
        var accepted = await receiver.WaitForAsync(a => a.Any(d => d.Type == "seal.unsealed") && a.Any(d => d.Type == "seal.sealed") && a.Count(d => d.Type == "seal.unsealed") >= 2,
            Generous, "the init's unseal, the seal and the unseal");

        Assert.Equal(new[] { "seal.unsealed", "seal.sealed", "seal.unsealed" }, accepted.Select(d => d.Type));
        Assert.Equal(accepted.Count, accepted.Select(d => d.Id).Distinct().Count());
        Assert.All(accepted, d =>
        {
            Assert.True(receiver.SignatureVerifies(d), $"signature {d.Signature} does not verify for {Encoding.UTF8.GetString(d.Body)}");
            Assert.Equal(d.Id, d.EventId);
            Assert.StartsWith("application/json", d.ContentType, StringComparison.Ordinal);
            Assert.True(d.Json.TryGetProperty("time", out _));
            Assert.Equal(32, d.Id.Length);
        });
        // The refused attempts were the same event, sent again with the same id and body.
        var first = receiver.Requests.First();
        Assert.Equal(503, first.Answered);
        Assert.Equal(accepted[0].Id, first.Id);
        Assert.Equal(accepted[0].Body, first.Body);
        // A signature made with another key does not verify: the check can fail.
        await using var stranger = await WebhookReceiver.StartAsync(Encoding.UTF8.GetBytes("not-the-vault-key-at-all"));
        Assert.False(stranger.SignatureVerifies(accepted[0]));
        await WaitUntilAsync(() => !Directory.EnumerateFiles(Path.Combine(vault.DataDir, "events"), "*.json").Any(), "an empty spool");
    }

    [Fact]
    public async Task ReceiverDownWhileTheVaultRestarts_GetsEveryEventOnce_Afterwards_Signed()
    {
        var (key, keyFile) = NewKey();
        // Reserved, then closed: nothing listens there until the receiver starts at the end.
        var port = ServerHost.FreePort();
        var url = new Uri($"http://127.0.0.1:{port}/hook");
        await using var server = new VaultProcess(Directory.CreateTempSubdirectory("vault-webhook-").FullName);
        await server.StartAsync(WebhookArgs(url, keyFile));
        var init = await new SystemService.SystemServiceClient(server.Channel).InitAsync(new InitRequest { Passphrase = TestVault.Passphrase, Kdf = TestVault.FastKdf });
        using var client = new VaultClient(new VaultClientOptions { Address = server.Address, Token = init.RootToken });

        // Seen by a watcher (resuming after each seal ends its stream): every event but the init's unseal, which came before it.
        var seen = new List<Protocol.V1.SecurityEvent>();
        string? last = null;
        for (var cycle = 0; cycle < 3; cycle++)
        {
            last = await WatchThroughASealAsync(client, server, last, seen);
        }
        var spool = Path.Combine(server.DataDir, "events");
        Assert.True(Directory.EnumerateFiles(spool, "*.json").Count() >= 6, "the events wait in the spool while the receiver is down");

        // Killed (no shutdown at all) and started again on the same data directory. Still sealed
        // when the receiver comes up: the spool needs no key of the vault's.
        await server.KillAsync();
        await server.StartAsync(WebhookArgs(url, keyFile));
        await using var receiver = await WebhookReceiver.StartAsync(key, port);
        var whileSealed = await receiver.WaitForAsync(a => a.Count >= 7, Generous, "the seven events from before the restart");
        var system = new SystemService.SystemServiceClient(server.Channel);
        Assert.True((await system.StatusAsync(new StatusRequest())).Sealed);
        Assert.Equal(7, whileSealed.Count);
        // Unsealed: one more event.
        await system.UnsealAsync(new UnsealRequest { Passphrase = TestVault.Passphrase });

        // The init's unseal, three seal/unseal cycles, the unseal after the restart.
        var accepted = await receiver.WaitForAsync(a => a.Count >= 8, Generous, "eight events");
        string[] expected = ["seal.unsealed", "seal.sealed", "seal.unsealed", "seal.sealed", "seal.unsealed", "seal.sealed", "seal.unsealed", "seal.unsealed"];
        Assert.Equal(expected, accepted.Select(d => d.Type));
        Assert.Equal(accepted.Count, accepted.Select(d => d.Id).Distinct().Count());
        Assert.Subset(accepted.Select(d => d.Id).ToHashSet(), seen.Select(e => e.Id).ToHashSet());
        Assert.All(accepted, d => Assert.True(receiver.SignatureVerifies(d), $"signature {d.Signature} does not verify"));
        await WaitUntilAsync(() => !Directory.EnumerateFiles(spool, "*.json").Any(), "an empty spool");
        // Nothing more comes: each event once.
        Assert.Equal(8, receiver.Accepted.Count);
        Assert.DoesNotContain(Encoding.UTF8.GetString(key), server.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFullSpool_DropsTheOldestEvents_AndKeepsTheNewest()
    {
        var (key, keyFile) = NewKey();
        await using var receiver = await WebhookReceiver.StartAsync(key);
        receiver.Refusing = true;
        await using var vault = await TestVault.StartInitializedAsync([.. WebhookArgs(receiver.Url, keyFile), "--Vault:Events:Webhook:MaxSpooled=3"]);

        // Five events: the init's unseal, then seal, unseal, seal, unseal.
        for (var i = 0; i < 2; i++)
        {
            await vault.System.SealAsync(new SealRequest(), vault.As());
            await vault.UnsealAsync();
        }
        var spool = Path.Combine(vault.DataDir, "events");
        var kept = Directory.EnumerateFiles(spool, "*.json").Order(StringComparer.Ordinal).Select(File.ReadAllText).ToList();
        receiver.Refusing = false;
        var delivered = await receiver.WaitForAsync(a => a.Count(d => d.Type == "seal.unsealed") >= 2 && a.Any(d => d.Type == "seal.sealed"), Generous, "the three newest events");

        Assert.Equal(3, kept.Count);
        Assert.Equal(new[] { "seal.unsealed", "seal.sealed", "seal.unsealed" }, kept.Select(k => System.Text.Json.JsonDocument.Parse(k).RootElement.GetProperty("type").GetString()));
        var keptIds = kept.Select(k => System.Text.Json.JsonDocument.Parse(k).RootElement.GetProperty("id").GetString()!).ToHashSet();
        Assert.Subset(delivered.Select(d => d.Id).ToHashSet(), keptIds);
    }

    [Theory]
    [InlineData("hooks/vault", true, "Vault:Events:Webhook:Url: 'hooks/vault' is not an absolute http:// or https:// URL")]
    [InlineData("ftp://127.0.0.1/hook", true, "Vault:Events:Webhook:Url: 'ftp://127.0.0.1/hook' is not an absolute http:// or https:// URL")]
    [InlineData("http://127.0.0.1:9/hook", false, "Vault:Events:Webhook:SecretFile: is required with a webhook URL")]
    [InlineData("http://127.0.0.1:9/hook", null, "Vault:Events:Webhook:SecretFile: cannot be read")]
    public async Task BadWebhookSettings_RefuseStartUp_InOneLineNamingTheSetting(string url, bool? secretFile, string message)
    {
        var (_, keyFile) = NewKey();
        List<string> args = ["--dev", "--listen", "127.0.0.1:0", $"--Vault:Events:Webhook:Url={url}"];
        if (secretFile is not false)
        {
            args.Add($"--Vault:Events:Webhook:SecretFile={(secretFile is true ? keyFile : keyFile + ".missing")}");
        }

        var exited = await VaultProcess.RunToExitAsync(new Dictionary<string, string>(), [.. args]);

        Assert.NotEqual(0, exited.ExitCode);
        var line = Assert.Single(exited.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(message, line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", exited.Stdout + exited.Stderr, StringComparison.Ordinal);
    }

    /// <summary>The vault's arguments for a webhook to <paramref name="url"/>, retried quickly (a test waits for it).</summary>
    internal static string[] WebhookArgs(Uri url, string keyFile) =>
    [
        $"--Vault:Events:Webhook:Url={url}",
        $"--Vault:Events:Webhook:SecretFile={keyFile}",
        "--Vault:Events:Webhook:MinBackoff=00:00:00.100",
        "--Vault:Events:Webhook:MaxBackoff=00:00:01",
    ];

    /// <summary>A fresh key, and a file holding it (with a newline, as an editor leaves it).</summary>
    internal static (byte[] Key, string File) NewKey()
    {
        var text = "whsec-" + Guid.NewGuid().ToString("N");
        var file = Path.Combine(Directory.CreateTempSubdirectory("vault-webhook-key-").FullName, "key");
        File.WriteAllText(file, text + "\n");
        return (Encoding.UTF8.GetBytes(text), file);
    }

    internal static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTimeOffset.UtcNow + Generous;
        while (!condition())
        {
            if (DateTimeOffset.UtcNow > deadline)
            {
                throw new TimeoutException($"no {what} within {Generous}");
            }
            await Task.Delay(100);
        }
    }

    /// <summary>Watches (resuming after <paramref name="after"/>), seals, reads until the stream ends, unseals; returns the last event id seen.</summary>
    private static async Task<string?> WatchThroughASealAsync(VaultClient client, VaultProcess server, string? after, List<Protocol.V1.SecurityEvent> seen)
    {
        await using var items = client.WatchEventsAsync(afterId: after).GetAsyncEnumerator();
        var sealedNow = false;
        var ended = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await items.MoveNextAsync())
            {
                if (items.Current.Event is { } e)
                {
                    seen.Add(e);
                    after = e.Id;
                }
                else if (items.Current.Live && !sealedNow)
                {
                    Assert.False(items.Current.Missed);
                    sealedNow = true;
                    await client.SealAsync();
                }
            }
        });
        Assert.Equal(StatusCode.FailedPrecondition, ended.StatusCode);
        Assert.Equal("seal.sealed", seen[^1].Type);
        await new SystemService.SystemServiceClient(server.Channel).UnsealAsync(new UnsealRequest { Passphrase = TestVault.Passphrase });
        return after;
    }
}
