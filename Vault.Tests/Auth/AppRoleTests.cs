using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Auth;

public sealed class AppRoleTests(ClockedVault fixture) : IClassFixture<ClockedVault>
{
    private TestVault Vault => fixture.Vault;

    private AppRoleService.AppRoleServiceClient AppRoles => new(Vault.Channel);

    private async Task<(string Name, string RoleId)> RoleAsync(Action<Role>? shape = null)
    {
        var name = $"app-{Guid.NewGuid():N}";
        await Vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = name, Rules = { new PolicyRule { Path = $"kv/{name}/*", Capabilities = { "read" } } } } }, Vault.As());
        await Vault.Kv.PutAsync(new PutSecretRequest { Path = $"{name}/db", Data = { ["password"] = "for-the-app" } }, Vault.As());
        var role = new Role { Name = name, Policies = { name } };
        shape?.Invoke(role);
        await AppRoles.PutRoleAsync(new PutRoleRequest { Role = role }, Vault.As());
        var roleId = (await AppRoles.GetRoleIdAsync(new GetRoleIdRequest { Name = name }, Vault.As())).RoleId;
        return (name, roleId);
    }

    private Task<CreateSecretIdResponse> SecretIdAsync(string name) =>
        AppRoles.CreateSecretIdAsync(new CreateSecretIdRequest { Name = name }, Vault.As()).ResponseAsync;

    [Fact]
    public async Task Login_WithRoleIdAndSecretId_ReturnsATokenCarryingTheRolesPolicies()
    {
        var (name, roleId) = await RoleAsync();
        var secret = await SecretIdAsync(name);
        var login = await AppRoles.LoginAsync(new AppRoleLoginRequest { RoleId = roleId, SecretId = secret.SecretId });
        Assert.Equal([name], login.Info.Policies);
        Assert.Equal("for-the-app", (await Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{name}/db" }, Vault.As(login.Token))).Data["password"]);
        await Rpc.FailsWith(StatusCode.PermissionDenied, () => Vault.Kv.PutAsync(new PutSecretRequest { Path = $"{name}/db", Data = { ["x"] = "y" } }, Vault.As(login.Token)));
    }

    [Fact]
    public async Task AWrongSecretId_IsUnauthenticated_AndTheFailureIsAudited()
    {
        var (name, roleId) = await RoleAsync();
        await SecretIdAsync(name);
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => AppRoles.LoginAsync(new AppRoleLoginRequest { RoleId = roleId, SecretId = "vs_guess" }));
        var audit = new AuditService.AuditServiceClient(Vault.Channel);
        var entries = (await audit.TailAsync(new TailAuditRequest { Rpc = "AppRoleService/Login", Limit = 1000 }, Vault.As())).Entries;
        Assert.Contains(entries, e => e.Outcome == "error" && e.ErrorCode == "Unauthenticated" && e.Path == "auth/approle/login");
        DataDirectoryScan.AssertNoneAppear(Path.Combine(Vault.DataDir, "audit"), ["vs_guess"]);
    }

    [Fact]
    public async Task AnExhaustedSecretId_IsRefused()
    {
        var (name, roleId) = await RoleAsync(r => r.SecretIdNumUses = 1);
        var secret = await SecretIdAsync(name);
        await AppRoles.LoginAsync(new AppRoleLoginRequest { RoleId = roleId, SecretId = secret.SecretId });
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => AppRoles.LoginAsync(new AppRoleLoginRequest { RoleId = roleId, SecretId = secret.SecretId }));
    }

    [Fact]
    public async Task AnExpiredSecretId_IsRefused()
    {
        var (name, roleId) = await RoleAsync(r => r.SecretIdTtl = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)));
        var secret = await SecretIdAsync(name);
        fixture.Clock.Advance(TimeSpan.FromSeconds(1.5));
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => AppRoles.LoginAsync(new AppRoleLoginRequest { RoleId = roleId, SecretId = secret.SecretId }));
    }

    [Fact]
    public async Task ALoginFromOutsideTheBoundCidr_IsRefused_AndFromInsideWorks()
    {
        var (outsideName, outsideRoleId) = await RoleAsync(r => r.BoundCidrs.Add("10.0.0.0/8"));
        var outsideSecret = await SecretIdAsync(outsideName);
        var ex = await Rpc.FailsWith(StatusCode.Unauthenticated, () => AppRoles.LoginAsync(new AppRoleLoginRequest { RoleId = outsideRoleId, SecretId = outsideSecret.SecretId }));
        Assert.Contains("bound networks", ex.Status.Detail, StringComparison.Ordinal);

        var (insideName, insideRoleId) = await RoleAsync(r => r.BoundCidrs.Add("127.0.0.0/8"));
        var insideSecret = await SecretIdAsync(insideName);
        await AppRoles.LoginAsync(new AppRoleLoginRequest { RoleId = insideRoleId, SecretId = insideSecret.SecretId });
    }

    [Fact]
    public async Task RepeatedFailures_AreSlowedDown_EvenForTheRightSecretId()
    {
        var (name, roleId) = await RoleAsync();
        var secret = await SecretIdAsync(name);
        var codes = new List<StatusCode>();
        for (var i = 0; i < 6; i++)
        {
            var ex = await Assert.ThrowsAsync<RpcException>(async () => await AppRoles.LoginAsync(new AppRoleLoginRequest { RoleId = roleId, SecretId = $"vs_wrong{i}" }));
            codes.Add(ex.StatusCode);
        }
        Assert.Equal(StatusCode.Unauthenticated, codes[0]);
        Assert.Contains(StatusCode.ResourceExhausted, codes);
        // Guessing is throttled per role: right now even the right secret id must wait.
        await Rpc.FailsWith(StatusCode.ResourceExhausted, () => AppRoles.LoginAsync(new AppRoleLoginRequest { RoleId = roleId, SecretId = secret.SecretId }));
    }

    [Fact]
    public async Task BadRoleInput_IsInvalidArgumentNamingTheField()
    {
        var ex = await Rpc.FailsWith(StatusCode.InvalidArgument, () => AppRoles.PutRoleAsync(new PutRoleRequest { Role = new Role { Name = "r-bad", Policies = { "root" }, BoundCidrs = { "not-a-cidr" } } }, Vault.As()));
        Assert.StartsWith("role.bound_cidrs[0]:", ex.Status.Detail, StringComparison.Ordinal);
        await Rpc.FailsWith(StatusCode.NotFound, () => AppRoles.GetRoleAsync(new GetRoleRequest { Name = "r-bad" }, Vault.As()));
        ex = await Rpc.FailsWith(StatusCode.InvalidArgument, () => AppRoles.PutRoleAsync(new PutRoleRequest { Role = new Role { Name = "r-bad", Policies = { "no-such-policy" } } }, Vault.As()));
        Assert.StartsWith("role.policies:", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DeletingARole_KillsItsSecretIds()
    {
        var (name, roleId) = await RoleAsync();
        var secret = await SecretIdAsync(name);
        Assert.Contains(name, (await AppRoles.ListRolesAsync(new ListRolesRequest(), Vault.As())).Names);
        await AppRoles.DeleteRoleAsync(new DeleteRoleRequest { Name = name }, Vault.As());
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => AppRoles.LoginAsync(new AppRoleLoginRequest { RoleId = roleId, SecretId = secret.SecretId }));
        Assert.DoesNotContain(name, (await AppRoles.ListRolesAsync(new ListRolesRequest(), Vault.As())).Names);
    }
}
