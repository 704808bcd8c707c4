using Grpc.Core;
using Microsoft.Extensions.Time.Testing;
using Vault.Protocol.V1;
using Vault.Testing;
using Vault.Tests.Cli;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Crypto;

/// <summary>
/// Dual control: a vault initialised with key shares unseals only when a threshold of operators
/// each give their share (from separate vaultctl processes); a share given twice, a share of
/// another vault and a passphrase are refused with clear messages; progress can be reset and
/// expires; no share reaches the server's log or the audit trail.
/// </summary>
public sealed class KeyShareUnsealTests
{
    [Fact]
    public async Task ThreeOperators_OfFive_UnsealFromSeparateProcesses_AfterARestart_AndNoShareIsLogged()
    {
        var dir = Directory.CreateTempSubdirectory("vault-shares-").FullName;
        await using var server = new VaultProcess(dir);
        await server.StartAsync();
        var init = (await new VaultCtl(server.Address).RunAsync("operator", "init", "--shares", "5", "--threshold", "3", "--json")).Json();
        var shares = init.GetProperty("shares").EnumerateArray().Select(s => s.GetString()!).ToList();
        var root = init.GetProperty("root_token").GetString()!;
        Assert.Equal(5, shares.Distinct().Count());
        await new KvService.KvServiceClient(server.Channel).PutAsync(new PutSecretRequest { Path = "kept/across", Data = { ["v"] = "restart" } }, Auth(root));

        await server.KillAsync();
        await server.StartAsync();
        var status = await new SystemService.SystemServiceClient(server.Channel).StatusAsync(new StatusRequest());
        Assert.Equal((true, 5u, 3u, 0u), (status.Sealed, status.SecretShares, status.SecretThreshold, status.UnsealProgress));

        // Operators 2, 4 and 5, each with their own vaultctl process and their share on standard input.
        var progress = new List<string>();
        foreach (var share in new[] { shares[1], shares[3], shares[4] })
        {
            var run = await new VaultCtl(server.Address) { AsProcess = true }.RunWithInputAsync(share + "\n", "operator", "unseal", "--json");
            progress.Add($"{run.Json().GetProperty("sealed").GetBoolean()} {run.Json().GetProperty("unseal_progress").GetUInt32()}");
        }

        Assert.Equal(["True 1", "True 2", "False 0"], progress);
        var read = await new KvService.KvServiceClient(server.Channel).GetAsync(new GetSecretRequest { Path = "kept/across" }, Auth(root));
        Assert.Equal("restart", read.Data["v"]);
        var audit = string.Concat(Directory.EnumerateFiles(Path.Combine(dir, "audit"), "*", SearchOption.AllDirectories).Select(File.ReadAllText));
        foreach (var share in shares)
        {
            Assert.DoesNotContain(share, server.Output, StringComparison.Ordinal);
            Assert.DoesNotContain(share, audit, StringComparison.Ordinal);
        }
        Assert.DoesNotContain(root, server.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ADuplicateShare_AShareOfAnotherVault_AndAPassphrase_AreRefused_AndTheRightOnesStillUnseal()
    {
        await using var vault = await TestVault.StartAsync();
        var system = vault.System;
        var init = await system.InitAsync(new InitRequest { SecretShares = 3, SecretThreshold = 2 });
        await using var other = await TestVault.StartAsync();
        var foreign = (await other.System.InitAsync(new InitRequest { SecretShares = 3, SecretThreshold = 2 })).Shares;
        await system.SealAsync(new SealRequest(), Auth(init.RootToken));

        await system.UnsealAsync(new UnsealRequest { Share = init.Shares[0] });
        var twice = await Rpc.FailsWith(StatusCode.InvalidArgument, () => system.UnsealAsync(new UnsealRequest { Share = init.Shares[0] }).ResponseAsync);
        Assert.Equal("share: this share was already given (1 of 2 so far)", twice.Status.Detail);
        var passphrase = await Rpc.FailsWith(StatusCode.InvalidArgument, () => system.UnsealAsync(new UnsealRequest { Passphrase = "a long enough passphrase" }).ResponseAsync);
        Assert.StartsWith("passphrase: this vault unseals with key shares (2 of 3)", passphrase.Status.Detail, StringComparison.Ordinal);
        var garbage = await Rpc.FailsWith(StatusCode.InvalidArgument, () => system.UnsealAsync(new UnsealRequest { Share = "not-base64!" }).ResponseAsync);
        Assert.Equal("share: is not base64", garbage.Status.Detail);
        var truncated = await Rpc.FailsWith(StatusCode.InvalidArgument, () => system.UnsealAsync(new UnsealRequest { Share = Convert.ToBase64String(new byte[16]) }).ResponseAsync);
        Assert.StartsWith("share: is not a key share of this vault", truncated.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(1u, (await system.StatusAsync(new StatusRequest())).UnsealProgress);

        // A share of another vault (another x coordinate than the one given, or the same): the
        // threshold is reached, the result does not open the keyring, and everything is forgotten.
        var stranger = foreign.First(f => Convert.FromBase64String(f)[^1] != Convert.FromBase64String(init.Shares[0])[^1]);
        var wrong = await Rpc.FailsWith(StatusCode.Unauthenticated, () => system.UnsealAsync(new UnsealRequest { Share = stranger }).ResponseAsync);
        Assert.Contains("do not open the keyring", wrong.Status.Detail, StringComparison.Ordinal);
        var after = await system.StatusAsync(new StatusRequest());
        Assert.Equal((true, 0u), (after.Sealed, after.UnsealProgress));

        await system.UnsealAsync(new UnsealRequest { Share = init.Shares[2] });
        var unsealed = await system.UnsealAsync(new UnsealRequest { Share = init.Shares[1] });
        Assert.False(unsealed.Sealed);
        Assert.Empty(foreign.Intersect(init.Shares));
    }

    [Fact]
    public async Task Progress_CanBeReset_AndExpires()
    {
        // A fresh server on a clock the test moves, initialised here with shares.
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var clocked = await TestVault.OpenOnAsync(Directory.CreateTempSubdirectory("vault-shares-").FullName, rootToken: "", clock);
        var init = await clocked.System.InitAsync(new InitRequest { SecretShares = 3, SecretThreshold = 3 });
        await clocked.System.SealAsync(new SealRequest(), Auth(init.RootToken));
        var cli = new VaultCtl(clocked.Address);

        await clocked.System.UnsealAsync(new UnsealRequest { Share = init.Shares[0] });
        Assert.Matches("(?m)^Unseal Progress +1/3$", (await cli.RunAsync("operator", "status")).Ok());
        var reset = (await cli.RunAsync("operator", "unseal", "--reset")).Ok();
        Assert.Matches("(?m)^Unseal Progress +0/3$", reset);

        await clocked.System.UnsealAsync(new UnsealRequest { Share = init.Shares[1] });
        await clocked.System.UnsealAsync(new UnsealRequest { Share = init.Shares[2] });
        clock.Advance(TimeSpan.FromMinutes(11));
        Assert.Equal(0u, (await clocked.System.StatusAsync(new StatusRequest())).UnsealProgress);
        // The expired ones must be given again: all three now.
        foreach (var share in init.Shares.Take(2))
        {
            Assert.True((await clocked.System.UnsealAsync(new UnsealRequest { Share = share })).Sealed);
        }
        Assert.False((await clocked.System.UnsealAsync(new UnsealRequest { Share = init.Shares[2] })).Sealed);
    }

    [Theory]
    [InlineData(1u, 1u, "secret_shares: must be 2 to 255")]
    [InlineData(256u, 2u, "secret_shares: must be 2 to 255")]
    [InlineData(3u, 4u, "secret_threshold: must be 2 to secret_shares (3)")]
    [InlineData(3u, 1u, "secret_threshold: must be 2 to secret_shares (3)")]
    [InlineData(3u, 0u, "secret_threshold: must be 2 to secret_shares (3)")]
    public async Task Init_WithSharesOutOfRange_IsInvalidArgument_AndLeavesTheVaultUninitialised(uint shares, uint threshold, string detail)
    {
        await using var vault = await TestVault.StartAsync();
        var ex = await Rpc.FailsWith(StatusCode.InvalidArgument, () => vault.System.InitAsync(new InitRequest { SecretShares = shares, SecretThreshold = threshold }).ResponseAsync);
        Assert.Equal(detail, ex.Status.Detail);
        Assert.False((await vault.System.StatusAsync(new StatusRequest())).Initialized);
        var both = await Rpc.FailsWith(StatusCode.InvalidArgument, () => vault.System.InitAsync(new InitRequest { Passphrase = "a long enough passphrase", SecretShares = 3, SecretThreshold = 2 }).ResponseAsync);
        Assert.StartsWith("passphrase: give a passphrase or key shares", both.Status.Detail, StringComparison.Ordinal);
    }

    private static CallOptions Auth(string token) => new(new Metadata { { "authorization", $"Bearer {token}" } });
}
