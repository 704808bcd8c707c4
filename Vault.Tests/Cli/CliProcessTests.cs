namespace Vault.Tests.Cli;

/// <summary>
/// The other CLI tests run vaultctl's entry point inside the test process. These run the built
/// vaultctl.dll as a process beside it and require the same exit code, standard output and
/// standard error, byte for byte: what the in-process runs show is what a user's shell sees.
/// </summary>
public sealed class CliProcessTests(CliVaultFixture fixture) : IClassFixture<CliVaultFixture>
{
    private readonly VaultCtl _inProcess = fixture.Ctl();
    private readonly VaultCtl _process = new(fixture.Vault.Address, fixture.Vault.RootToken) { AsProcess = true };

    [Fact]
    public async Task Binary_AndInProcessRun_ShowTheSame()
    {
        var path = $"cli/{Guid.NewGuid():N}";
        (await _process.RunAsync("kv", "put", path, "user=alice", "password=hunter2")).Ok();

        string[][] commands =
        [
            ["kv", "get", path, "--json"],
            ["kv", "get", path],
            ["kv", "get", path, "--field", "password"],
            ["kv", "get", $"{path}-missing"],
            ["kv", "get"],
            ["no-such-command"],
            ["kv", "get", path, "--timeout", "soon"],
        ];
        foreach (var args in commands)
        {
            var asProcess = await _process.RunAsync(args);
            var inProcess = await _inProcess.RunAsync(args);

            Assert.True(asProcess == inProcess, $"vaultctl {string.Join(' ', args)}: process {asProcess} vs in-process {inProcess}");
        }
    }

    [Fact]
    public async Task Binary_ReadsStandardInput_AndTheEnvironment()
    {
        var name = CliVaultFixture.Unique("proc");
        var policy = $$"""{"rules":[{"path":"kv/{{name}}/*","capabilities":["read"]}]}""";

        (await _process.RunWithInputAsync(policy, "policy", "write", name, "-")).Ok();

        var read = (await _inProcess.RunAsync("policy", "read", name, "--json")).Json();
        Assert.Equal($"kv/{name}/*", read.GetProperty("rules")[0].GetProperty("path").GetString());
        var anonymous = new VaultCtl(fixture.Vault.Address) { AsProcess = true };
        (await anonymous.RunAsync("policy", "read", name)).OneLineError(2, "Unauthenticated");
    }
}
