using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Vault.Protocol.V1;
using Vault.Server.Idempotency;
using Vault.Server.Storage;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Idempotency;

/// <summary>
/// Writes sent again under their <c>vault-idempotency-key</c> (what a client does when the node it
/// sent a write to died before answering) are given the answer they were given and change nothing;
/// a key is the caller's own, bound to its request, refused where it is not honoured, survives a
/// restart, and is forgotten after its window.
/// </summary>
public sealed class IdempotentWritesTests
{
    private static string NewKey() => Guid.NewGuid().ToString("N");

    private static CallOptions Keyed(TestVault vault, string key, string? token = null) =>
        new(new Metadata { { "authorization", $"Bearer {token ?? vault.RootToken}" }, { IdempotentWrites.Header, key } });

    private static PutSecretRequest Put(string path, string value) => new() { Path = path, Data = { ["v"] = value } };

    private static async Task<long> CurrentVersionAsync(TestVault vault, string path) =>
        (long)(await vault.Kv.GetMetadataAsync(new GetMetadataRequest { Path = path }, vault.As())).CurrentVersion;

    [Fact]
    public async Task APut_SentAgainWithItsKey_IsAnsweredAsBefore_AndMakesNoVersion()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var key = NewKey();

        var first = await vault.Kv.PutAsync(Put("app/one", "a"), Keyed(vault, key));
        var again = await vault.Kv.PutAsync(Put("app/one", "a"), Keyed(vault, key));

        Assert.Equal(first, again);
        Assert.Equal(1, await CurrentVersionAsync(vault, "app/one"));
        // A new key is a new write.
        var next = await vault.Kv.PutAsync(Put("app/one", "a"), Keyed(vault, NewKey()));
        Assert.Equal(2ul, next.Version);
        Assert.Equal(2, await CurrentVersionAsync(vault, "app/one"));
    }

    [Fact]
    public async Task ADelete_SentAgainAfterANewerVersion_IsAnsweredAsBefore_AndDeletesNothingMore()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(Put("app/del", "1"), vault.As());
        await vault.Kv.PutAsync(Put("app/del", "2"), vault.As());
        var key = NewKey();

        var deleted = await vault.Kv.DeleteAsync(new DeleteSecretRequest { Path = "app/del" }, Keyed(vault, key));
        await vault.Kv.PutAsync(Put("app/del", "3"), vault.As());
        // "Delete the latest" again would delete version 3; the repeat is answered, not made.
        var again = await vault.Kv.DeleteAsync(new DeleteSecretRequest { Path = "app/del" }, Keyed(vault, key));

        Assert.Equal([2ul], deleted.Versions);
        Assert.Equal(deleted, again);
        Assert.Equal("3", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "app/del" }, vault.As())).Data["v"]);
    }

    [Fact]
    public async Task ARepeat_IsAnswered_EvenWhereTheWriteItMadeWouldNowBeRefused()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "create-only", Rules = { new PolicyRule { Path = "kv/app/*", Capabilities = { "create" } } } } }, vault.As());
        var writer = (await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "create-only" } }, vault.As())).Token;
        var key = NewKey();

        var first = await vault.Kv.PutAsync(Put("app/once", "a"), Keyed(vault, key, writer));
        // The secret exists now: a new put needs update, which the policy does not grant...
        var update = await Assert.ThrowsAsync<RpcException>(async () => await vault.Kv.PutAsync(Put("app/once", "a"), Keyed(vault, NewKey(), writer)));
        Assert.Equal(StatusCode.PermissionDenied, update.StatusCode);
        // ...but the repeat of the put that made it is answered.
        Assert.Equal(first, await vault.Kv.PutAsync(Put("app/once", "a"), Keyed(vault, key, writer)));
        Assert.Equal(1, await CurrentVersionAsync(vault, "app/once"));
    }

    [Fact]
    public async Task AKey_OnACallWithoutAToken_IsRefused()
    {
        await using var vault = await TestVault.StartInitializedAsync();

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await vault.System.StatusAsync(new StatusRequest(), new CallOptions(new Metadata { { IdempotentWrites.Header, NewKey() } })));

        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Contains(IdempotentWrites.Header, refused.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AKey_SentAgainWithADifferentRequest_IsRefusedNamingTheKey_AndChangesNothing()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var key = NewKey();
        await vault.Kv.PutAsync(Put("app/two", "a"), Keyed(vault, key));

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await vault.Kv.PutAsync(Put("app/two", "b"), Keyed(vault, key)));

        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.StartsWith(IdempotentWrites.Header + ":", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal("a", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "app/two" }, vault.As())).Data["v"]);
        Assert.Equal(1, await CurrentVersionAsync(vault, "app/two"));
    }

    [Fact]
    public async Task AnotherCallersSameKey_IsItsOwn_AndNeverGivenTheFirstCallersAnswer()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var other = await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "root" } }, vault.As());
        var key = NewKey();
        await vault.Kv.PutAsync(Put("app/three", "a"), Keyed(vault, key));

        var theirs = await vault.Kv.PutAsync(Put("app/three", "a"), Keyed(vault, key, other.Token));

        Assert.Equal(2ul, theirs.Version);
        Assert.Equal(2, await CurrentVersionAsync(vault, "app/three"));
    }

    [Theory]
    [InlineData("short")]
    [InlineData("has spaces and dots. which keys do not")]
    [InlineData(null)]
    public async Task AMalformedKey_IsRefusedNamingIt_AndChangesNothing(string? key)
    {
        await using var vault = await TestVault.StartInitializedAsync();

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await vault.Kv.PutAsync(Put("app/bad", "a"), Keyed(vault, key ?? new string('k', 129))));

        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Contains(IdempotentWrites.Header, refused.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("bad", (await vault.Kv.ListAsync(new ListSecretsRequest { Prefix = "app/" }, vault.As())).Keys);
    }

    [Fact]
    public async Task AKey_OnAWriteThatDoesNotHonourOne_IsRefused_RatherThanIgnored()
    {
        await using var vault = await TestVault.StartInitializedAsync();

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await vault.Policies.PutAsync(
            new PutPolicyRequest { Policy = new Policy { Name = "keyed", Rules = { new PolicyRule { Path = "app/*", Capabilities = { "read" } } } } }, Keyed(vault, NewKey())));

        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Contains("does not take one", refused.Status.Detail, StringComparison.Ordinal);
        var missing = await Assert.ThrowsAsync<RpcException>(async () => await vault.Policies.GetAsync(new GetPolicyRequest { Name = "keyed" }, vault.As()));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task AnAnswer_SurvivesARestart_AndIsForgottenAfterItsWindow()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await TestVault.StartInitializedOnAsync(clock, "--Vault:Leases:ReaperInterval=00:00:30");
        var key = NewKey();
        var first = await vault.Kv.PutAsync(Put("app/kept", "a"), Keyed(vault, key));

        await vault.RestartAsync();
        await vault.System.UnsealAsync(new UnsealRequest { Passphrase = TestVault.Passphrase });
        Assert.Equal(first, await vault.Kv.PutAsync(Put("app/kept", "a"), Keyed(vault, key)));
        Assert.Equal(1, await CurrentVersionAsync(vault, "app/kept"));

        var store = vault.Services.GetRequiredService<IVaultStore>();
        clock.Advance(IdempotentWrites.Window + TimeSpan.FromMinutes(1));
        await Vault.Tests.Client.ClientKit.WaitUntilAsync(() => Task.FromResult(store.List<IdempotencyRecord>(Collections.Idempotency, "").Count == 0), TimeSpan.FromSeconds(30),
            "the reaper to forget the answer past its window");

        // Past the window the key is a new write (a client stops sending it long before).
        Assert.Equal(2ul, (await vault.Kv.PutAsync(Put("app/kept", "a"), Keyed(vault, key))).Version);
    }

    [Fact]
    public async Task TheRecordedAnswer_IsSealed_NotInTheDataFile()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(Put("app/sealed", "a"), Keyed(vault, NewKey()));
        vault.FlushStore();

        // The answer's JSON ({"Item1":<version>,"Item2":<time>}) is sealed: none of it is readable.
        var store = vault.Services.GetRequiredService<IVaultStore>();
        var record = Assert.Single(store.List<IdempotencyRecord>(Collections.Idempotency, ""));
        Assert.DoesNotContain("Item1", System.Text.Encoding.UTF8.GetString(record.Value.Answer), StringComparison.Ordinal);
        Assert.NotEmpty(record.Value.WrappedDataKey);
        // Keyed by an HMAC (of the caller's accessor and the key): neither is in the id.
        Assert.Equal(64, record.Key.Length);
        DataDirectoryScan.AssertNoneAppear(vault.DataDir, ["\"Item1\""]);
    }
}
