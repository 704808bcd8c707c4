using System.Diagnostics;
using System.Text.RegularExpressions;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Cli;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Client;

/// <summary>
/// The README's .NET sample is samples/Vault.Samples.Npgsql/Program.cs, compiled with the solution:
/// the README shows that file word for word, and the built sample is run against a real vault and
/// PostgreSQL and stopped with Ctrl+C.
/// </summary>
public sealed partial class ReadmeSampleTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    [Fact]
    public void Readme_ShowsTheCompiledSample_WordForWord()
    {
        var root = RepositoryFiles.Root();
        var readme = File.ReadAllText(Path.Combine(root, "README.md")).ReplaceLineEndings("\n");
        var section = readme[readme.IndexOf("## Using it from .NET", StringComparison.Ordinal)..];
        var block = CSharpBlock().Match(section);
        Assert.True(block.Success, "no ```csharp block in the README's 'Using it from .NET' section");
        var program = File.ReadAllText(Path.Combine(root, "samples", "Vault.Samples.Npgsql", "Program.cs")).ReplaceLineEndings("\n");

        Assert.Equal(program.TrimEnd(), block.Groups["code"].Value.TrimEnd());
    }

    [Fact]
    public async Task Sample_OnCtrlC_RevokesItsLease_SoItsDatabaseUserIsDroppedAtOnce()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        // A one-hour lease: a user dropped within seconds of Ctrl+C was revoked, not expired.
        await ClientKit.DynamicRoleAsync(vault, systems.Postgres, defaultTtl: TimeSpan.FromHours(1), name: "billing-app");
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "billing-app", Rules = { new PolicyRule { Path = "lease/creds/billing-app", Capabilities = { "read" } } } } }, vault.As());
        var appRoles = new AppRoleService.AppRoleServiceClient(vault.Channel);
        await appRoles.PutRoleAsync(new PutRoleRequest { Role = new Role { Name = "billing", Policies = { "billing-app" } } }, vault.As());
        var roleId = (await appRoles.GetRoleIdAsync(new GetRoleIdRequest { Name = "billing" }, vault.As())).RoleId;
        var secretId = (await appRoles.CreateSecretIdAsync(new CreateSecretIdRequest { Name = "billing" }, vault.As())).SecretId;
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(SampleDll());
        start.Environment["VAULT_ADDR"] = vault.Address;
        start.Environment["VAULT_ROLE_ID"] = roleId;
        start.Environment["VAULT_SECRET_ID"] = secretId;
        start.Environment["BILLING_DB"] = $"Host={systems.PostgresServer.Host};Port={systems.PostgresServer.Port};Database={systems.PostgresServer.Database};Pooling=false";

        await using var app = new RunningVaultCtl(Process.Start(start) ?? throw new InvalidOperationException("cannot start the sample"));
        var line = await app.WaitForLineAsync(l => l.Contains(" connected as ", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
        var username = line[(line.IndexOf(" connected as ", StringComparison.Ordinal) + " connected as ".Length)..].Trim();
        Assert.True(await ClientKit.PostgresUserExistsAsync(systems, username), $"the sample's user {username} does not exist");
        var lease = Assert.Single((await vault.Leases().ListLeasesAsync(new ListLeasesRequest { Prefix = "dynamic/billing-app/" }, vault.As())).Leases);

        var exited = await app.InterruptAsync(TimeSpan.FromSeconds(30));

        Assert.True(exited.ExitCode == 0, $"the sample exited {exited.ExitCode}: {exited.StdErr}");
        Assert.False(await ClientKit.PostgresUserExistsAsync(systems, username), $"Ctrl+C left the sample's user {username} alive until its lease's TTL");
        var gone = await Assert.ThrowsAsync<RpcException>(() => vault.Leases().LookupLeaseAsync(new LookupLeaseRequest { LeaseId = lease.Id }, vault.As()).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
    }

    [GeneratedRegex("```csharp\n(?<code>.*?)```", RegexOptions.Singleline)]
    private static partial Regex CSharpBlock();

    /// <summary>The sample in its own build output (same configuration and framework as the tests).</summary>
    private static string SampleDll()
    {
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var dll = Path.Combine(RepositoryFiles.Root(), "samples", "Vault.Samples.Npgsql", "bin", testBin.Parent!.Name, testBin.Name, "Vault.Samples.Npgsql.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"{dll} not found: build the solution first");
    }
}
