using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Testing;
using Vault.Tests.Cli;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Crypto;

/// <summary>
/// Re-splitting key shares (when someone leaves): the new shares are staged and take effect only
/// once a quorum of them is given back, so a SIGKILL at each step leaves the old or the new shares
/// unsealing, never neither; old shares are refused afterwards; a rotation in between, a wrong
/// quorum or a reset are handled without losing the vault.
/// </summary>
public sealed class ShareRekeyTests
{
    [Fact]
    public async Task AReSplit_KilledAtEachStep_LeavesTheOldOrTheNewSharesUnsealing_ThenOnlyTheNew()
    {
        await using var server = new VaultProcess(Directory.CreateTempSubdirectory("vault-resplit-").FullName);
        await server.StartAsync();
        var init = await new SystemService.SystemServiceClient(server.Channel).InitAsync(new InitRequest { SecretShares = 3, SecretThreshold = 2 });
        var auth = new CallOptions(new Metadata { { "authorization", $"Bearer {init.RootToken}" } });
        await new KvService.KvServiceClient(server.Channel).PutAsync(new PutSecretRequest { Path = "survives/resplit", Data = { ["v"] = "yes" } }, auth);
        VaultCtl Cli() => new(server.Address, init.RootToken);

        // Step 1 and 2: start, then two current shares; the second answers with the new ones.
        (await Cli().RunAsync("operator", "rekey", "--shares", "4", "--threshold", "3")).Ok();
        var first = (await Cli().RunWithInputAsync(init.Shares[0] + "\n", "operator", "rekey", "--json")).Json();
        Assert.Equal(1, first.GetProperty("progress").GetInt32());
        var second = (await Cli().RunWithInputAsync(init.Shares[2] + "\n", "operator", "rekey", "--json")).Json();
        var fresh = second.GetProperty("new_shares").EnumerateArray().Select(s => s.GetString()!).ToList();
        Assert.Equal(4, fresh.Count);
        Assert.True(second.GetProperty("verification_pending").GetBoolean());

        // Killed with the new shares staged: the old ones still unseal, and the re-split goes on.
        await server.KillAsync();
        await server.StartAsync();
        Assert.True(await UnsealsAsync(server, init.Shares[1], init.Shares[0]), "after a kill with new shares staged, the old shares do not unseal");
        foreach (var share in fresh.Take(2))
        {
            var step = (await Cli().RunWithInputAsync(share + "\n", "operator", "rekey", "--verify", "--json")).Json();
            Assert.False(step.TryGetProperty("rekeyed_at", out _), step.ToString());
        }
        var done = (await Cli().RunWithInputAsync(fresh[3] + "\n", "operator", "rekey", "--verify", "--json")).Json();
        Assert.NotNull(done.GetProperty("rekeyed_at").GetString());

        // Killed after it took effect: the old shares are refused, three new ones unseal.
        await server.KillAsync();
        await server.StartAsync();
        var stale = await Assert.ThrowsAsync<RpcException>(() => UnsealsAsync(server, init.Shares[0], init.Shares[1], init.Shares[2]));
        Assert.Contains("from before a rekey", stale.Status.Detail, StringComparison.Ordinal);
        var status = await new SystemService.SystemServiceClient(server.Channel).StatusAsync(new StatusRequest());
        Assert.Equal((4u, 3u), (status.SecretShares, status.SecretThreshold));
        Assert.True(await UnsealsAsync(server, fresh[1], fresh[2], fresh[0]));
        Assert.Equal("yes", (await new KvService.KvServiceClient(server.Channel).GetAsync(new GetSecretRequest { Path = "survives/resplit" }, auth)).Data["v"]);
        foreach (var share in init.Shares.Concat(fresh))
        {
            Assert.DoesNotContain(share, server.Output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task AWrongQuorum_ARotationInBetween_AndAReset_NeverLoseTheVault()
    {
        await using var vault = await TestVault.StartAsync();
        var system = vault.System;
        var init = await system.InitAsync(new InitRequest { SecretShares = 3, SecretThreshold = 2 });
        var auth = vault.As(init.RootToken);
        await using var other = await TestVault.StartAsync();
        var foreign = (await other.System.InitAsync(new InitRequest { SecretShares = 3, SecretThreshold = 2 })).Shares;
        var x = Convert.FromBase64String(init.Shares[0])[^1];

        // A quorum that is not this vault's current shares makes nothing.
        await system.RekeyAsync(new RekeyRequest { NewShares = 3, NewThreshold = 2 }, auth);
        await system.RekeyAsync(new RekeyRequest { Share = init.Shares[0] }, auth);
        var wrong = await Rpc.FailsWith(StatusCode.Unauthenticated,
            () => system.RekeyAsync(new RekeyRequest { Share = foreign.First(f => Convert.FromBase64String(f)[^1] != x) }, auth).ResponseAsync);
        Assert.Contains("not this vault's current shares", wrong.Status.Detail, StringComparison.Ordinal);
        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => system.RekeyAsync(new RekeyRequest { VerifyShare = init.Shares[0] }, auth).ResponseAsync);

        // Staged, then the key rotated: the staged keyring lacks the new key, so it is refused (and dropped).
        await system.RekeyAsync(new RekeyRequest { NewShares = 3, NewThreshold = 2 }, auth);
        await system.RekeyAsync(new RekeyRequest { Share = init.Shares[0] }, auth);
        var staged = (await system.RekeyAsync(new RekeyRequest { Share = init.Shares[1] }, auth)).NewShares;
        await system.RotateKeyAsync(new RotateKeyRequest(), auth);
        await system.RekeyAsync(new RekeyRequest { VerifyShare = staged[0] }, auth);
        var rotated = await Rpc.FailsWith(StatusCode.FailedPrecondition, () => system.RekeyAsync(new RekeyRequest { VerifyShare = staged[1] }, auth).ResponseAsync);
        Assert.Contains("rotated since", rotated.Status.Detail, StringComparison.Ordinal);

        // Staged again, then reset: the new shares do nothing, the old ones unseal.
        await system.RekeyAsync(new RekeyRequest { NewShares = 3, NewThreshold = 2 }, auth);
        await system.RekeyAsync(new RekeyRequest { Share = init.Shares[2] }, auth);
        var dropped = (await system.RekeyAsync(new RekeyRequest { Share = init.Shares[1] }, auth)).NewShares;
        await system.RekeyAsync(new RekeyRequest { Reset = true }, auth);
        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => system.RekeyAsync(new RekeyRequest { VerifyShare = dropped[0] }, auth).ResponseAsync);
        await system.SealAsync(new SealRequest(), auth);
        await system.UnsealAsync(new UnsealRequest { Share = init.Shares[1] });
        Assert.False((await system.UnsealAsync(new UnsealRequest { Share = init.Shares[2] })).Sealed);
        var both = await Rpc.FailsWith(StatusCode.InvalidArgument, () => system.RekeyAsync(new RekeyRequest { Share = init.Shares[0], Reset = true }, auth).ResponseAsync);
        Assert.StartsWith("rekey: give one of", both.Status.Detail, StringComparison.Ordinal);
    }

    /// <summary>Gives <paramref name="shares"/> to unseal; true once unsealed.</summary>
    private static async Task<bool> UnsealsAsync(VaultProcess server, params string[] shares)
    {
        var system = new SystemService.SystemServiceClient(server.Channel);
        var sealedNow = true;
        foreach (var share in shares)
        {
            sealedNow = (await system.UnsealAsync(new UnsealRequest { Share = share })).Sealed;
        }
        return !sealedNow;
    }
}
