using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Testing;
using Vault.Tests.Cli;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Crypto;

/// <summary>
/// Changing the passphrase: afterwards only the new one unseals and every record reads as before;
/// a wrong current passphrase changes nothing; a rekey killed at any moment leaves the vault
/// unsealable with the old passphrase or the new one, never neither.
/// </summary>
public sealed class RekeyTests
{
    private const string NewPassphrase = "a brand new passphrase for the vault";

    [Fact]
    public async Task AfterARekey_OnlyTheNewPassphraseUnseals_AndTheDataReadsAsBefore()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "before/rekey", Data = { ["v"] = "kept" } }, vault.As());
        var cli = new VaultCtl(vault.Address, vault.RootToken);

        (await cli.RunWithInputAsync($"{TestVault.Passphrase}\n{NewPassphrase}\n", "operator", "rekey")).Ok();
        await vault.System.SealAsync(new SealRequest(), vault.As());

        var old = await Rpc.FailsWith(StatusCode.Unauthenticated, () => vault.System.UnsealAsync(new UnsealRequest { Passphrase = TestVault.Passphrase }).ResponseAsync);
        Assert.Contains("wrong passphrase", old.Status.Detail, StringComparison.Ordinal);
        Assert.False((await vault.System.UnsealAsync(new UnsealRequest { Passphrase = NewPassphrase })).Sealed);
        Assert.Equal("kept", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "before/rekey" }, vault.As())).Data["v"]);
        // It survives a restart, and the audit has the rekey but neither passphrase.
        await vault.RestartAsync();
        Assert.False((await vault.System.UnsealAsync(new UnsealRequest { Passphrase = NewPassphrase })).Sealed);
        var audit = await new AuditService.AuditServiceClient(vault.Channel).TailAsync(new TailAuditRequest { Limit = 50 }, vault.As());
        Assert.Contains(audit.Entries, e => e.Rpc == "vault.v1.SystemService/Rekey" && e.Outcome == "ok" && e.Path == "sys/rekey");
        var text = string.Join('\n', audit.Entries.Select(e => e.ToString()));
        Assert.DoesNotContain(TestVault.Passphrase, text, StringComparison.Ordinal);
        Assert.DoesNotContain(NewPassphrase, text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AWrongCurrentPassphrase_ChangesNothing_AndAKeyShareVaultIsToldRekeyIsForPassphrases()
    {
        await using var vault = await TestVault.StartInitializedAsync();

        var wrong = await Rpc.FailsWith(StatusCode.Unauthenticated, () => vault.System.RekeyAsync(new RekeyRequest { Passphrase = "not the passphrase", NewPassphrase = NewPassphrase }, vault.As()).ResponseAsync);
        Assert.Equal("rekey refused: the current passphrase is wrong; nothing changed", wrong.Status.Detail);
        var shortNew = await Rpc.FailsWith(StatusCode.InvalidArgument, () => vault.System.RekeyAsync(new RekeyRequest { Passphrase = TestVault.Passphrase, NewPassphrase = "short" }, vault.As()).ResponseAsync);
        Assert.Equal("new_passphrase: must be at least 8 characters", shortNew.Status.Detail);
        await vault.System.SealAsync(new SealRequest(), vault.As());
        Assert.False((await vault.System.UnsealAsync(new UnsealRequest { Passphrase = TestVault.Passphrase })).Sealed);

        await using var shared = await TestVault.StartAsync();
        var init = await shared.System.InitAsync(new InitRequest { SecretShares = 3, SecretThreshold = 2 });
        var shares = await Rpc.FailsWith(StatusCode.InvalidArgument, () => shared.System.RekeyAsync(new RekeyRequest { Passphrase = TestVault.Passphrase, NewPassphrase = NewPassphrase }, shared.As(init.RootToken)).ResponseAsync);
        Assert.Contains("key shares", shares.Status.Detail, StringComparison.Ordinal);
    }

    /// <summary>
    /// The server is killed (SIGKILL) at moments spread over the rekey — before it reads the
    /// request, while it derives the keys, around the write — and started again each time.
    /// </summary>
    [Fact]
    public async Task ARekeyKilledAtAnyMoment_LeavesTheOldOrTheNewPassphraseWorking_NeverNeither()
    {
        await using var server = new VaultProcess(Directory.CreateTempSubdirectory("vault-rekey-").FullName);
        await server.StartAsync();
        var system = new SystemService.SystemServiceClient(server.Channel);
        // A KDF costly enough that the kills land inside the derivations too.
        var init = await system.InitAsync(new InitRequest { Passphrase = TestVault.Passphrase, Kdf = new Protocol.V1.KdfParameters { MemoryKib = 32768, Iterations = 2, Parallelism = 2 } });
        var auth = new CallOptions(new Metadata { { "authorization", $"Bearer {init.RootToken}" } });
        await new KvService.KvServiceClient(server.Channel).PutAsync(new PutSecretRequest { Path = "survives/kills", Data = { ["v"] = "yes" } }, auth);
        var current = TestVault.Passphrase;
        var outcomes = new List<string>();

        foreach (var delayMs in new[] { 0, 20, 60, 120, 200, 350, 600 })
        {
            var next = $"passphrase after a kill at {delayMs} ms";
            var rekey = new SystemService.SystemServiceClient(server.Channel).RekeyAsync(new RekeyRequest { Passphrase = current, NewPassphrase = next }, auth).ResponseAsync;
            await Task.Delay(delayMs);
            await server.KillAsync();
            try
            {
                await rekey;
            }
            catch (RpcException)
            {
                // Killed before it answered: which passphrase holds is what the restart shows.
            }
            await server.StartAsync();
            system = new SystemService.SystemServiceClient(server.Channel);

            var oldWorks = await UnsealsAsync(system, current);
            var newWorks = !oldWorks && await UnsealsAsync(system, next);
            Assert.True(oldWorks || newWorks, $"killed {delayMs} ms into a rekey, neither the old nor the new passphrase unseals");
            outcomes.Add($"{delayMs} ms: {(oldWorks ? "old" : "new")}");
            current = oldWorks ? current : next;
            Assert.Equal("yes", (await new KvService.KvServiceClient(server.Channel).GetAsync(new GetSecretRequest { Path = "survives/kills" }, auth)).Data["v"]);
        }
        // A kill before the request was read leaves the old one, whatever the machine's speed.
        Assert.EndsWith("old", outcomes[0], StringComparison.Ordinal);

        // And a rekey that answered, then a kill: the new one holds.
        await new SystemService.SystemServiceClient(server.Channel).RekeyAsync(new RekeyRequest { Passphrase = current, NewPassphrase = NewPassphrase }, auth);
        await server.KillAsync();
        await server.StartAsync();
        system = new SystemService.SystemServiceClient(server.Channel);
        Assert.False(await UnsealsAsync(system, current), string.Join("; ", outcomes));
        Assert.True(await UnsealsAsync(system, NewPassphrase), string.Join("; ", outcomes));
    }

    private static async Task<bool> UnsealsAsync(SystemService.SystemServiceClient system, string passphrase)
    {
        try
        {
            return !(await system.UnsealAsync(new UnsealRequest { Passphrase = passphrase })).Sealed;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unauthenticated)
        {
            return false;
        }
    }
}
