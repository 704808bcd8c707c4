using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Storage;

/// <summary>
/// A name is its exact string everywhere it is stored, looked up, listed or deleted — also once
/// a change has reached the data file and across a restart — so access control, which compares
/// names exactly, protects what it appears to protect.
/// </summary>
public sealed class ExactNameTests
{
    [Fact]
    public async Task ATokenForUpperCasePaths_CannotTouchTheLowerCaseOnes_AndTheyStayIntactOnDisk()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.UnsealAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "team/abc/db", Data = { ["password"] = "victim-1" } }, vault.As());
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "upper", Rules = { new PolicyRule { Path = "kv/team/ABC/*", Capabilities = { "admin" } } } } }, vault.As());
        var token = (await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "upper" } }, vault.As())).Token;
        vault.FlushStore();

        // Its own paths work, and are other records than the victim's.
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "team/ABC/db", Data = { ["password"] = "attacker" } }, vault.As(token));
        await vault.Kv.DestroyAsync(new DestroySecretRequest { Path = "team/ABC/db", Versions = { 1 } }, vault.As(token));
        await vault.Kv.DeleteMetadataAsync(new DeleteMetadataRequest { Path = "team/ABC/db" }, vault.As(token));
        Assert.Empty((await vault.Kv.ListAsync(new ListSecretsRequest { Prefix = "team/ABC" }, vault.As(token))).Keys);
        await Rpc.FailsWith(StatusCode.NotFound, () => vault.Kv.GetMetadataAsync(new GetMetadataRequest { Path = "team/ABC/db" }, vault.As(token)));
        await Rpc.FailsWith(StatusCode.PermissionDenied, () => vault.Kv.GetMetadataAsync(new GetMetadataRequest { Path = "team/abc/db" }, vault.As(token)));
        vault.FlushStore();
        await vault.RestartAsync();
        await vault.UnsealAsync();

        var victim = await vault.Kv.GetAsync(new GetSecretRequest { Path = "team/abc/db" }, vault.As());
        Assert.Equal("victim-1", victim.Data["password"]);
        Assert.Equal(1ul, victim.Version);
        Assert.Equal(["db"], (await vault.Kv.ListAsync(new ListSecretsRequest { Prefix = "team/abc" }, vault.As())).Keys);
    }

    [Fact]
    public async Task EveryKindOfStoredName_ComparesExactly_AfterTheDataFileAndARestart()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.UnsealAsync();
        var approles = new AppRoleService.AppRoleServiceClient(vault.Channel);
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "admin/pg", Data = { ["username"] = "postgres", ["password"] = "admin-pw" } }, vault.As());
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "victim/s", Data = { ["v"] = "lower" } }, vault.As());
        var roleIds = new Dictionary<string, string>();
        var secretIds = new Dictionary<string, string>();
        foreach (var name in new[] { "victim", "VICTIM" })
        {
            await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = name, Rules = { new PolicyRule { Path = $"kv/{name}/*", Capabilities = { "read" } } } } }, vault.As());
            await approles.PutRoleAsync(new PutRoleRequest { Role = new Role { Name = $"app-{name}", Policies = { name } } }, vault.As());
            roleIds[name] = (await approles.GetRoleIdAsync(new GetRoleIdRequest { Name = $"app-{name}" }, vault.As())).RoleId;
            secretIds[name] = (await approles.CreateSecretIdAsync(new CreateSecretIdRequest { Name = $"app-{name}" }, vault.As())).SecretId;
            await vault.Targets().PutTargetAsync(new PutTargetRequest
            {
                Target = new Target { Name = $"t-{name}", Kind = "postgres", Connection = new Vault.Protocol.V1.TargetConnection { Host = "127.0.0.1", Port = 9 }, Account = $"acct_{name}", AdminSecret = "admin/pg" },
                CurrentPassword = $"pw-{name}-123",
                SkipVerification = true,
            }, vault.As());
            await leases.PutDynamicRoleAsync(new PutDynamicRoleRequest { Role = new DynamicRole { Name = $"dyn-{name}", Target = $"t-{name}", CreationStatements = { $"CREATE ROLE \"{{{{name}}}}\" LOGIN PASSWORD '{{{{password}}}}' -- {name}" } } }, vault.As());
            await leases.PutCheckoutSetAsync(new PutCheckoutSetRequest { Set = new CheckoutSet { Name = $"set-{name}", Targets = { $"t-{name}" } } }, vault.As());
        }
        var holder = (await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "victim" } }, vault.As())).Token;
        vault.FlushStore();
        await vault.RestartAsync();
        await vault.UnsealAsync();
        approles = new AppRoleService.AppRoleServiceClient(vault.Channel);
        leases = new LeaseService.LeaseServiceClient(vault.Channel);

        foreach (var name in new[] { "victim", "VICTIM" })
        {
            var policy = await vault.Policies.GetAsync(new GetPolicyRequest { Name = name }, vault.As());
            Assert.Equal($"kv/{name}/*", Assert.Single(policy.Rules).Path);
            Assert.Equal([name], (await approles.GetRoleAsync(new GetRoleRequest { Name = $"app-{name}" }, vault.As())).Policies);
            var login = await approles.LoginAsync(new AppRoleLoginRequest { RoleId = roleIds[name], SecretId = secretIds[name] });
            Assert.Equal([name], login.Info.Policies);
            Assert.Equal($"acct_{name}", (await vault.Targets().GetTargetAsync(new GetTargetRequest { Name = $"t-{name}" }, vault.As())).Account);
            Assert.Contains($"-- {name}", Assert.Single((await leases.GetDynamicRoleAsync(new GetDynamicRoleRequest { Name = $"dyn-{name}" }, vault.As())).CreationStatements), StringComparison.Ordinal);
            Assert.Equal([$"t-{name}"], (await leases.GetCheckoutSetAsync(new GetCheckoutSetRequest { Name = $"set-{name}" }, vault.As())).Targets);
        }
        Assert.NotEqual(roleIds["victim"], roleIds["VICTIM"]);
        Assert.Equal(["VICTIM", "victim"], (await vault.Policies.ListAsync(new ListPoliciesRequest(), vault.As())).Names.Where(n => n != "root").Order(StringComparer.Ordinal));
        // The holder of "victim" still reads under its own rule: the other policy did not replace it.
        Assert.Equal("lower", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "victim/s" }, vault.As(holder))).Data["v"]);

        // Deleting one name leaves the other.
        await vault.Policies.DeleteAsync(new DeletePolicyRequest { Name = "VICTIM" }, vault.As());
        await approles.DeleteRoleAsync(new DeleteRoleRequest { Name = "app-VICTIM" }, vault.As());
        await leases.DeleteDynamicRoleAsync(new DeleteDynamicRoleRequest { Name = "dyn-VICTIM" }, vault.As());
        await leases.DeleteCheckoutSetAsync(new DeleteCheckoutSetRequest { Name = "set-VICTIM" }, vault.As());
        await vault.Targets().DeleteTargetAsync(new DeleteTargetRequest { Name = "t-VICTIM" }, vault.As());
        vault.FlushStore();
        await vault.Policies.GetAsync(new GetPolicyRequest { Name = "victim" }, vault.As());
        await approles.LoginAsync(new AppRoleLoginRequest { RoleId = roleIds["victim"], SecretId = (await approles.CreateSecretIdAsync(new CreateSecretIdRequest { Name = "app-victim" }, vault.As())).SecretId });
        await leases.GetDynamicRoleAsync(new GetDynamicRoleRequest { Name = "dyn-victim" }, vault.As());
        await leases.GetCheckoutSetAsync(new GetCheckoutSetRequest { Name = "set-victim" }, vault.As());
        await vault.Targets().GetTargetAsync(new GetTargetRequest { Name = "t-victim" }, vault.As());
        await Rpc.FailsWith(StatusCode.NotFound, () => vault.Targets().GetTargetAsync(new GetTargetRequest { Name = "t-VICTIM" }, vault.As()));
    }

    [Fact]
    public async Task CustomMetadataKeys_ThatDifferOnlyInCase_AreTwoKeys_InTheDataFile()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.UnsealAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "meta/case", Data = { ["v"] = "1" } }, vault.As());
        await vault.Kv.UpdateMetadataAsync(new UpdateMetadataRequest { Path = "meta/case", ReplaceCustomMetadata = true, CustomMetadata = { ["Owner"] = "alice", ["owner"] = "bob" } }, vault.As());
        vault.FlushStore();
        await vault.RestartAsync();
        await vault.UnsealAsync();

        var meta = await vault.Kv.GetMetadataAsync(new GetMetadataRequest { Path = "meta/case" }, vault.As());
        Assert.Equal("alice", meta.CustomMetadata["Owner"]);
        Assert.Equal("bob", meta.CustomMetadata["owner"]);
    }
}
