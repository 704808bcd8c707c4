using System.Text;
using Grpc.Core;
using Vault.Client;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Telemetry;

/// <summary>
/// The security event stream as a tool or bot sees it (<c>WatchEvents</c>, through
/// <see cref="VaultClient"/>): seal and unseal, rotations against a real PostgreSQL, the policy it
/// needs, resuming after a seal ended it — and no password in the stream, the spool or the webhook.
/// </summary>
public sealed class SecurityEventTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    [Fact]
    public async Task Watch_SeesTheSeal_ThenEndsFailedPrecondition_AndResumingAfterItSeesTheUnseal()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        using var client = Client(vault, vault.RootToken);
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(2));

        await using var watch = client.WatchEventsAsync(cancellationToken: stop.Token).GetAsyncEnumerator(stop.Token);
        Assert.True(await watch.MoveNextAsync());
        Assert.True(watch.Current.Live);
        Assert.False(watch.Current.Missed);
        await client.SealAsync(stop.Token);
        Assert.True(await watch.MoveNextAsync());
        var sealedEvent = watch.Current.Event;
        var ended = await Assert.ThrowsAsync<RpcException>(async () => await watch.MoveNextAsync());

        Assert.Equal("seal.sealed", sealedEvent.Type);
        Assert.Equal(32, sealedEvent.Id.Length);
        Assert.True(Math.Abs((DateTimeOffset.UtcNow - sealedEvent.Time.ToDateTimeOffset()).TotalMinutes) < 5, $"event time {sealedEvent.Time}");
        Assert.Equal(StatusCode.FailedPrecondition, ended.StatusCode);
        // Sealed: no new watch either.
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await client.WatchEventsAsync(cancellationToken: stop.Token).GetAsyncEnumerator(stop.Token).MoveNextAsync());
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);

        await vault.UnsealAsync();
        var resumed = await FirstAsync(client.WatchEventsAsync(afterId: sealedEvent.Id, cancellationToken: stop.Token), 2);
        Assert.Equal("seal.unsealed", resumed[0].Event.Type);
        Assert.True(resumed[1].Live);
        Assert.False(resumed[1].Missed);
        // An id the server does not hold: told so, on the marker.
        var unknown = await FirstAsync(client.WatchEventsAsync(afterId: new string('0', 32), cancellationToken: stop.Token), 1);
        Assert.True(unknown[0].Live);
        Assert.True(unknown[0].Missed);
        // A type prefix leaves the rest out.
        var onlyUnseals = await FirstAsync(client.WatchEventsAsync("seal.unsealed", afterId: sealedEvent.Id, cancellationToken: stop.Token), 2);
        Assert.Equal("seal.unsealed", onlyUnseals[0].Event.Type);
        var onlySeals = await FirstAsync(client.WatchEventsAsync("seal.sealed", afterId: sealedEvent.Id, cancellationToken: stop.Token), 1);
        Assert.True(onlySeals[0].Live);
    }

    [Fact]
    public async Task Watch_WithoutReadOnSysEvents_IsPermissionDenied_AndWithItIsServed()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "auditor", Rules = { new PolicyRule { Path = "sys/audit", Capabilities = { "read" } } } } }, vault.As());
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "events-bot", Rules = { new PolicyRule { Path = "sys/events", Capabilities = { "read" } } } } }, vault.As());
        var auditor = (await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "auditor" } }, vault.As())).Token;
        var bot = (await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "events-bot" } }, vault.As())).Token;
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(2));

        using var refusedClient = Client(vault, auditor);
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await FirstAsync(refusedClient.WatchEventsAsync(cancellationToken: stop.Token), 1));
        using var botClient = Client(vault, bot);
        var served = await FirstAsync(botClient.WatchEventsAsync(cancellationToken: stop.Token), 1);

        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        Assert.True(served[0].Live);
    }

    [Fact]
    public async Task Rotations_AreEvents_ForWatchersAndTheWebhook_AndTheNewPasswordIsInNoneOfThemNorTheSpool()
    {
        var (key, keyFile) = WebhookTests.NewKey();
        await using var receiver = await WebhookReceiver.StartAsync(key);
        // Down for now: the events wait in the spool, where the test reads them.
        receiver.Refusing = true;
        await using var vault = await TestVault.StartInitializedAsync(WebhookTests.WebhookArgs(receiver.Url, keyFile));
        using var client = Client(vault, vault.RootToken);
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var system = systems.Postgres;
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await system.CreateAccountAsync(initial);
        var admin = await RotationKit.PutAdminSecretAsync(vault.Kv, vault.As(), system);
        var name = RotationKit.UniqueName("events");
        var targets = vault.Targets();
        await targets.PutTargetAsync(new PutTargetRequest { Target = RotationKit.Describe(system, name, account, admin), CurrentPassword = initial }, vault.As());
        // And one whose certificate check fails (another CA): its rotation fails before anything is sent.
        using var otherCa = new TestCertificates("Another CA");
        var failing = RotationKit.Describe(system, RotationKit.UniqueName("events-failing"), account, admin);
        failing.Connection.CaCertificates = otherCa.CaPem;
        await targets.PutTargetAsync(new PutTargetRequest { Target = failing, CurrentPassword = "unused", SkipVerification = true }, vault.As());

        await using var watch = client.WatchEventsAsync("rotation.", cancellationToken: stop.Token).GetAsyncEnumerator(stop.Token);
        Assert.True(await watch.MoveNextAsync());
        Assert.True(watch.Current.Live);
        var rotated = await targets.RotateTargetAsync(new RotateTargetRequest { Name = name }, vault.As());
        var failed = await targets.RotateTargetAsync(new RotateTargetRequest { Name = failing.Name }, vault.As());
        var password = (await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, vault.As())).Password;
        Assert.True(await watch.MoveNextAsync());
        var succeededEvent = watch.Current.Event;
        Assert.True(await watch.MoveNextAsync());
        var failedEvent = watch.Current.Event;
        var spooled = Directory.EnumerateFiles(Path.Combine(vault.DataDir, "events")).Select(File.ReadAllText).ToList();
        receiver.Refusing = false;
        var delivered = await receiver.WaitForAsync(a => a.Any(d => d.Type == "rotation.failed"), TimeSpan.FromMinutes(2), "the failed rotation");

        Assert.Equal(RotationOutcome.Succeeded, rotated.Event.Outcome);
        Assert.Equal(RotationOutcome.Failed, failed.Event.Outcome);
        Assert.Equal("rotation.succeeded", succeededEvent.Type);
        Assert.Equal(name, succeededEvent.Attributes["target"]);
        Assert.Equal("postgres", succeededEvent.Attributes["kind"]);
        Assert.Equal(account, succeededEvent.Attributes["account"]);
        Assert.Equal("manual", succeededEvent.Attributes["trigger"]);
        Assert.Equal("rotation.failed", failedEvent.Type);
        Assert.Equal(failing.Name, failedEvent.Attributes["target"]);
        Assert.False(string.IsNullOrEmpty(failedEvent.Attributes["reason"]), "a failed rotation's event says why");
        Assert.Contains(spooled, s => s.Contains("\"rotation.succeeded\"", StringComparison.Ordinal) && s.Contains(succeededEvent.Id, StringComparison.Ordinal));
        Assert.Equal(new[] { "rotation.succeeded", "rotation.failed" }, delivered.Where(d => d.Type.StartsWith("rotation.", StringComparison.Ordinal)).Select(d => d.Type));
        Assert.Equal(succeededEvent.Id, delivered.Single(d => d.Type == "rotation.succeeded").Id);
        // No password anywhere an event went: the stream, the spool files, any request the receiver got.
        var everywhere = new[] { succeededEvent.ToString(), failedEvent.ToString() }
            .Concat(spooled)
            .Concat(receiver.Requests.Select(r => Encoding.UTF8.GetString(r.Body) + r.Signature));
        foreach (var secret in new[] { password, initial })
        {
            Assert.All(everywhere, text => Assert.DoesNotContain(secret, text, StringComparison.Ordinal));
        }
        Assert.NotEqual(initial, password);
    }

    private static VaultClient Client(TestVault vault, string token) => new(new VaultClientOptions { Address = vault.Address, Token = token });

    private static async Task<List<WatchEventsResponse>> FirstAsync(IAsyncEnumerable<WatchEventsResponse> stream, int count)
    {
        var items = new List<WatchEventsResponse>();
        await foreach (var item in stream)
        {
            items.Add(item);
            if (items.Count == count)
            {
                break;
            }
        }
        return items;
    }
}
