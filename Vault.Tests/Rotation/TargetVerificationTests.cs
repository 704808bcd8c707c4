using System.Net;
using System.Net.Sockets;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Rotation;

/// <summary>
/// Registering a target checks it on its system first: the admin credential must log in and the
/// account must exist, and the error names which one failed. <c>skip_verification</c> registers
/// it anyway (a system that is down during onboarding).
/// </summary>
public sealed class TargetVerificationTests(TargetSystems systems) : IClassFixture<TargetSystems>, IAsyncLifetime
{
    private TestVault _vault = null!;

    public async Task InitializeAsync() => _vault = await TestVault.StartInitializedAsync();

    public async Task DisposeAsync() => await _vault.DisposeAsync();

    public static TheoryData<string> Kinds() => new() { "postgres", "mysql", "ldap" };

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task PutTarget_WithAWrongAdminPassword_IsInvalidArgumentNamingTheAdminSecret_AndSkipVerificationRegistersIt(string kind)
    {
        var system = systems.Get(kind);
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await system.CreateAccountAsync(initial);
        var admin = $"admin/{Guid.NewGuid():N}";
        var wrong = $"Wrong-{Guid.NewGuid():N}";
        await _vault.Kv.PutAsync(new PutSecretRequest { Path = admin, Data = { ["username"] = system.Admin.Username, ["password"] = wrong } }, _vault.As());
        var name = RotationKit.UniqueName($"badadm-{kind}");
        var request = new PutTargetRequest { Target = RotationKit.Describe(system, name, account, admin), CurrentPassword = initial };

        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _vault.Targets().PutTargetAsync(request, _vault.As()));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.StartsWith("target.admin_secret: the admin credential does not work on the system", ex.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(wrong, ex.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(initial, ex.Status.Detail, StringComparison.Ordinal);
        await AssertNotRegisteredAsync(name);

        request.SkipVerification = true;
        var registered = await _vault.Targets().PutTargetAsync(request, _vault.As());
        Assert.Equal(name, registered.Name);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task PutTarget_WithAMissingAccount_IsInvalidArgumentNamingTheAccount_AndSkipVerificationRegistersIt(string kind)
    {
        var system = systems.Get(kind);
        var admin = await RotationKit.PutAdminSecretAsync(_vault.Kv, _vault.As(), system);
        var missing = kind switch
        {
            "ldap" => $"uid=missing-{Guid.NewGuid():N},{systems.LdapServer.PeopleDn}",
            _ => $"missing_{Guid.NewGuid():N}"[..20],
        };
        var name = RotationKit.UniqueName($"noacct-{kind}");
        var request = new PutTargetRequest { Target = RotationKit.Describe(system, name, missing, admin), CurrentPassword = "Today-1234567" };

        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _vault.Targets().PutTargetAsync(request, _vault.As()));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.StartsWith("target.account: no such account on the system", ex.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(system.Admin.Password, ex.Status.Detail, StringComparison.Ordinal);
        await AssertNotRegisteredAsync(name);

        request.SkipVerification = true;
        var registered = await _vault.Targets().PutTargetAsync(request, _vault.As());
        Assert.Equal(name, registered.Name);
    }

    [Fact]
    public async Task PutTarget_WithAMissingSecondAccount_NamesTheSecondAccount()
    {
        var system = systems.Postgres;
        var admin = await RotationKit.PutAdminSecretAsync(_vault.Kv, _vault.As(), system);
        var first = await system.CreateAccountAsync("First-Account-1");
        var name = RotationKit.UniqueName("noacct2");
        var target = RotationKit.Describe(system, name, first, admin);
        target.Strategy = RotationStrategy.AlternatingUsers;
        target.SecondAccount = $"missing_{Guid.NewGuid():N}"[..20];

        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await _vault.Targets().PutTargetAsync(new PutTargetRequest { Target = target, CurrentPassword = "First-Account-1", SecondCurrentPassword = "Second-Account-1" }, _vault.As()));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.StartsWith("target.second_account: no such account on the system", ex.Status.Detail, StringComparison.Ordinal);
        await AssertNotRegisteredAsync(name);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task PutTarget_WhenTheSystemCannotBeReached_IsFailedPrecondition_AndSkipVerificationRegistersIt(string kind)
    {
        var system = systems.Get(kind);
        var admin = await RotationKit.PutAdminSecretAsync(_vault.Kv, _vault.As(), system);
        var name = RotationKit.UniqueName($"down-{kind}");
        var target = RotationKit.Describe(system, name, kind == "ldap" ? $"uid=app,{systems.LdapServer.PeopleDn}" : "app", admin);
        target.Connection.Port = (uint)ClosedPort();
        var request = new PutTargetRequest { Target = target, CurrentPassword = "Today-1234567" };

        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _vault.Targets().PutTargetAsync(request, _vault.As()));

        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.StartsWith("target.connection: cannot verify the target on its system", ex.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("skip_verification", ex.Status.Detail, StringComparison.Ordinal);
        await AssertNotRegisteredAsync(name);

        request.SkipVerification = true;
        Assert.Equal(name, (await _vault.Targets().PutTargetAsync(request, _vault.As())).Name);
    }

    private async Task AssertNotRegisteredAsync(string name)
    {
        var listed = await _vault.Targets().ListTargetsAsync(new ListTargetsRequest(), _vault.As());
        Assert.DoesNotContain(listed.Targets, t => t.Name == name);
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
