using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Rotation;

/// <summary>WatchTarget tells a consumer when a target's credential changes, without carrying the password.</summary>
public sealed class WatchTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    [Fact]
    public async Task Watch_SendsTheCurrentVersion_ThenOneMessagePerRotation()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var system = systems.Postgres;
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await system.CreateAccountAsync(initial);
        var admin = await RotationKit.PutAdminSecretAsync(vault.Kv, vault.As(), system);
        var name = RotationKit.UniqueName("watch");
        var targets = vault.Targets();
        await targets.PutTargetAsync(new PutTargetRequest { Target = RotationKit.Describe(system, name, account, admin), CurrentPassword = initial }, vault.As());
        // An application's policy: its credential, nothing else.
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "app", Rules = { new PolicyRule { Path = $"rotation/target/{name}/credential", Capabilities = { "read" } } } } }, vault.As());
        var app = (await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "app" } }, vault.As())).Token;

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var watch = targets.WatchTarget(new WatchTargetRequest { Name = name }, vault.As(app).WithCancellationToken(stop.Token));
        Assert.True(await watch.ResponseStream.MoveNext(stop.Token));
        Assert.Equal(0UL, watch.ResponseStream.Current.Version);
        Assert.Equal(account, watch.ResponseStream.Current.Username);

        for (var expected = 1UL; expected <= 2; expected++)
        {
            var rotated = await targets.RotateTargetAsync(new RotateTargetRequest { Name = name }, vault.As());
            Assert.Equal(RotationOutcome.Succeeded, rotated.Event.Outcome);
            Assert.True(await watch.ResponseStream.MoveNext(stop.Token));
            var change = watch.ResponseStream.Current;
            Assert.Equal(expected, change.Version);
            Assert.NotNull(change.RotatedAt);
            // The consumer reads the new password itself; it logs in.
            var credential = await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, vault.As(app));
            Assert.Equal(expected, credential.Version);
            Assert.True(await system.CanLoginAsync(account, credential.Password));
            Assert.DoesNotContain(credential.Password, change.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Watch_WithoutReadOnTheCredential_IsPermissionDenied()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var admin = $"admin/{Guid.NewGuid():N}";
        await vault.Kv.PutAsync(new PutSecretRequest { Path = admin, Data = { ["username"] = "a", ["password"] = "p" } }, vault.As());
        var name = RotationKit.UniqueName("watch");
        await vault.Targets().PutTargetAsync(new PutTargetRequest
        {
            Target = new Target { Name = name, Kind = "postgres", Connection = new TargetConnection { Host = "127.0.0.1", Port = 9 }, Account = "app", AdminSecret = admin },
            CurrentPassword = "pw-123456",
            // Nothing listens there: registered without the check.
            SkipVerification = true,
        }, vault.As());
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "other", Rules = { new PolicyRule { Path = $"rotation/target/{name}", Capabilities = { "read" } } } } }, vault.As());
        var token = (await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "other" } }, vault.As())).Token;

        using var watch = vault.Targets().WatchTarget(new WatchTargetRequest { Name = name }, vault.As(token));
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await watch.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.PermissionDenied, ex.StatusCode);
    }
}
