using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Cli;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Crypto;

/// <summary>
/// A vault whose every root token was revoked is not lost: a quorum of key shares (or the
/// passphrase) makes a new one, delivered under a one-time pad and audited with its event; fewer
/// shares, wrong shares or a wrong passphrase make nothing.
/// </summary>
public sealed class GenerateRootTests
{
    [Fact]
    public async Task AfterEveryRootTokenIsRevoked_AQuorumOfShares_MakesANewOne_ThroughTheCli_AndFewerDoNot()
    {
        await using var vault = await TestVault.StartAsync();
        var init = await vault.System.InitAsync(new InitRequest { SecretShares = 5, SecretThreshold = 3 });
        await vault.Tokens.RevokeAsync(new RevokeTokenRequest(), vault.As(init.RootToken));
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => vault.Tokens.LookupAsync(new LookupTokenRequest(), vault.As(init.RootToken)).ResponseAsync);
        var cli = new VaultCtl(vault.Address);

        var started = (await cli.RunAsync("operator", "generate-root", "--init", "--json")).Json();
        var otp = started.GetProperty("otp").GetString()!;
        Assert.Equal(3, started.GetProperty("threshold").GetInt32());
        var first = (await cli.RunWithInputAsync(init.Shares[4] + "\n", "operator", "generate-root", "--json")).Json();
        var second = (await cli.RunWithInputAsync(init.Shares[0] + "\n", "operator", "generate-root", "--json")).Json();
        Assert.Equal((1, 2), (first.GetProperty("progress").GetInt32(), second.GetProperty("progress").GetInt32()));
        Assert.False(second.TryGetProperty("encoded_token", out _));
        var third = (await cli.RunWithInputAsync(init.Shares[2] + "\n", "operator", "generate-root", "--json")).Json();
        var encoded = third.GetProperty("encoded_token").GetString()!;
        var token = (await cli.RunAsync("operator", "generate-root", "--decode", encoded, "--otp", otp)).Ok().Trim();

        // The new token is root; neither message on the wire held it.
        var info = await vault.Tokens.LookupAsync(new LookupTokenRequest(), vault.As(token));
        Assert.Equal(["root"], info.Policies);
        Assert.Equal(third.GetProperty("root_token_accessor").GetString(), info.Accessor);
        Assert.DoesNotContain(token, encoded, StringComparison.Ordinal);
        Assert.NotEqual(token, Encoding.ASCII.GetString(Convert.FromBase64String(encoded)));
        // Audited prominently: the step that made it, with its event and the new accessor.
        var audit = await new AuditService.AuditServiceClient(vault.Channel).TailAsync(new TailAuditRequest { Limit = 20 }, vault.As(token));
        var made = Assert.Single(audit.Entries, e => e.Event == "root-generated");
        Assert.Equal(("vault.v1.SystemService/GenerateRoot", "sys/generate-root", info.Accessor), (made.Rpc, made.Path, made.Accessor));
        var entries = string.Join('\n', audit.Entries.Select(e => e.ToString()));
        Assert.DoesNotContain(token, entries, StringComparison.Ordinal);
        Assert.All(init.Shares, s => Assert.DoesNotContain(s, entries, StringComparison.Ordinal));

        // Two shares of three make nothing; the attempt is forgotten at a reset.
        await vault.System.GenerateRootAsync(new GenerateRootRequest { Otp = Pad() });
        await vault.System.GenerateRootAsync(new GenerateRootRequest { Share = init.Shares[1] });
        var two = await vault.System.GenerateRootAsync(new GenerateRootRequest { Share = init.Shares[3] });
        Assert.Equal((2u, ""), (two.Progress, two.EncodedToken));
        Assert.Contains("attempt forgotten", (await cli.RunAsync("operator", "generate-root", "--reset")).Ok(), StringComparison.Ordinal);
        var afterReset = await Rpc.FailsWith(StatusCode.FailedPrecondition, () => vault.System.GenerateRootAsync(new GenerateRootRequest { Share = init.Shares[0] }).ResponseAsync);
        Assert.Contains("no generate-root attempt", afterReset.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AShareOfAnotherVault_CompletesNothing_AndTheAttemptStartsOver()
    {
        await using var vault = await TestVault.StartAsync();
        var init = await vault.System.InitAsync(new InitRequest { SecretShares = 3, SecretThreshold = 2 });
        await using var other = await TestVault.StartAsync();
        var foreign = (await other.System.InitAsync(new InitRequest { SecretShares = 3, SecretThreshold = 2 })).Shares;
        var x = Convert.FromBase64String(init.Shares[0])[^1];

        await vault.System.GenerateRootAsync(new GenerateRootRequest { Otp = Pad() });
        await vault.System.GenerateRootAsync(new GenerateRootRequest { Share = init.Shares[0] });
        var wrong = await Rpc.FailsWith(StatusCode.Unauthenticated,
            () => vault.System.GenerateRootAsync(new GenerateRootRequest { Share = foreign.First(f => Convert.FromBase64String(f)[^1] != x) }).ResponseAsync);

        Assert.Contains("do not open the keyring", wrong.Status.Detail, StringComparison.Ordinal);
        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => vault.System.GenerateRootAsync(new GenerateRootRequest { Share = init.Shares[1] }).ResponseAsync);
    }

    [Fact]
    public async Task WithThePassphrase_ItIsOneStep_AndAWrongPassphraseMakesNothing()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var cli = new VaultCtl(vault.Address);

        var made = (await cli.RunWithInputAsync(TestVault.Passphrase + "\n", "operator", "generate-root", "--json")).Json();
        var token = made.GetProperty("root_token").GetString()!;
        Assert.Equal(["root"], (await vault.Tokens.LookupAsync(new LookupTokenRequest(), vault.As(token))).Policies);

        var wrong = await cli.RunWithInputAsync("not the passphrase at all\n", "operator", "generate-root");
        wrong.OneLineError(2, "Unauthenticated: generate-root refused: wrong passphrase");
        var noPad = await Rpc.FailsWith(StatusCode.InvalidArgument, () => vault.System.GenerateRootAsync(new GenerateRootRequest { Passphrase = TestVault.Passphrase, Otp = Convert.ToBase64String(new byte[8]) }).ResponseAsync);
        Assert.Equal("otp: must be 46 random bytes, base64", noPad.Status.Detail);
        var shares = await Rpc.FailsWith(StatusCode.InvalidArgument, () => vault.System.GenerateRootAsync(new GenerateRootRequest { Otp = Pad() }).ResponseAsync);
        Assert.StartsWith("share: this vault uses a passphrase", shares.Status.Detail, StringComparison.Ordinal);
        // Two root tokens now: init's and the generated one; no third from the refusals.
        var audit = await new AuditService.AuditServiceClient(vault.Channel).TailAsync(new TailAuditRequest { Limit = 50 }, vault.As());
        Assert.Single(audit.Entries, e => e.Event == "root-generated");
    }

    [Fact]
    public async Task WhileSealed_ItIsRefused()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.System.SealAsync(new SealRequest(), vault.As());

        var ex = await Rpc.FailsWith(StatusCode.FailedPrecondition, () => vault.System.GenerateRootAsync(new GenerateRootRequest { Passphrase = TestVault.Passphrase, Otp = Pad() }).ResponseAsync);
        Assert.Contains("sealed", ex.Status.Detail, StringComparison.Ordinal);
    }

    private static string Pad() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(46));
}
