namespace Vault.Tests.Cli;

public sealed class CliPolicyTests(CliVaultFixture fixture) : IClassFixture<CliVaultFixture>
{
    private const string AppsReadOnly = """{"rules":[{"path":"kv/apps/*","capabilities":["read","list"]},{"path":"kv/apps/secret","capabilities":["deny"]}]}""";

    private readonly VaultCtl _ctl = fixture.Ctl();

    private async Task<string> WritePolicyFileAsync(string json)
    {
        var file = Path.Combine(Path.GetTempPath(), $"policy-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, json);
        return file;
    }

    [Fact]
    public async Task PolicyWriteThenRead_Json_RoundTripsRules()
    {
        var name = CliVaultFixture.Unique("apps-ro");
        var file = await WritePolicyFileAsync(AppsReadOnly);

        var written = (await _ctl.RunAsync("policy", "write", name, file)).Ok();
        var read = (await _ctl.RunAsync("policy", "read", name, "--json")).Json();

        Assert.Equal($"Policy '{name}' written\n", written);
        Assert.Equal(name, read.GetProperty("name").GetString());
        var rules = read.GetProperty("rules").EnumerateArray().ToList();
        Assert.Equal(2, rules.Count);
        Assert.Equal("kv/apps/*", rules[0].GetProperty("path").GetString());
        Assert.Equal(["read", "list"], rules[0].GetProperty("capabilities").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal(["deny"], rules[1].GetProperty("capabilities").EnumerateArray().Select(c => c.GetString()));
        File.Delete(file);
    }

    [Fact]
    public async Task PolicyWrite_FromStdin_StoresPolicy()
    {
        var name = CliVaultFixture.Unique("stdin");

        (await _ctl.RunWithInputAsync("""{"rules":[{"path":"kv/stdin/*","capabilities":["read"]},{"path":"kv/prod/*","capabilities":["read"],"mfa_within_seconds":300}]}""", "policy", "write", name, "-")).Ok();
        var table = (await _ctl.RunAsync("policy", "read", name)).Ok();

        var lines = table.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches("^PATH +CAPABILITIES +MFA$", lines[0]);
        Assert.Matches("^kv/stdin/\\* +read +-$", lines[2]);
        Assert.Matches("^kv/prod/\\* +read +within 5m$", lines[3]);
    }

    [Fact]
    public async Task PolicyRead_JsonOutput_IsAcceptedByPolicyWrite()
    {
        var source = CliVaultFixture.Unique("src");
        var copy = CliVaultFixture.Unique("copy");
        (await _ctl.RunWithInputAsync(AppsReadOnly, "policy", "write", source, "-")).Ok();

        var json = (await _ctl.RunAsync("policy", "read", source, "--json")).Ok();
        (await _ctl.RunWithInputAsync(json, "policy", "write", copy, "-")).Ok();
        var copied = (await _ctl.RunAsync("policy", "read", copy, "--json")).Json();

        Assert.Equal(2, copied.GetProperty("rules").GetArrayLength());
    }

    [Fact]
    public async Task PolicyList_IncludesWrittenPolicy()
    {
        var name = CliVaultFixture.Unique("listed");
        (await _ctl.RunWithInputAsync(AppsReadOnly, "policy", "write", name, "-")).Ok();

        var json = (await _ctl.RunAsync("policy", "list", "--json")).Json();
        var human = (await _ctl.RunAsync("policy", "list")).Ok();

        Assert.Contains(name, json.GetProperty("policies").EnumerateArray().Select(p => p.GetString()));
        Assert.Contains(name, human.Split('\n'));
    }

    [Fact]
    public async Task PolicyDelete_RemovesPolicy()
    {
        var name = CliVaultFixture.Unique("doomed");
        (await _ctl.RunWithInputAsync(AppsReadOnly, "policy", "write", name, "-")).Ok();

        var deleted = (await _ctl.RunAsync("policy", "delete", name, "--json")).Json();
        var read = await _ctl.RunAsync("policy", "read", name);

        Assert.True(deleted.GetProperty("deleted").GetBoolean());
        read.OneLineError(2, "vaultctl: NotFound: ");
    }

    [Fact]
    public async Task PolicyWrite_InvalidJson_IsOneLineUsageError()
    {
        var result = await _ctl.RunWithInputAsync("{\"rules\": [", "policy", "write", CliVaultFixture.Unique("bad"), "-");

        result.OneLineError(1, "is not valid JSON");
    }

    [Fact]
    public async Task PolicyWrite_UnknownCapability_IsInvalidArgument()
    {
        var result = await _ctl.RunWithInputAsync("""{"rules":[{"path":"kv/x/*","capabilities":["fly"]}]}""", "policy", "write", CliVaultFixture.Unique("bad"), "-");

        result.OneLineError(2, "vaultctl: InvalidArgument: ");
    }

    [Fact]
    public async Task PolicyWrite_MissingFile_IsOneLineUsageError()
    {
        var result = await _ctl.RunAsync("policy", "write", "p", "/nonexistent/policy.json");

        result.OneLineError(1, "cannot read the policy from '/nonexistent/policy.json'");
    }
}
