using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Auth;

public sealed class AuthorizationTests(ClockedVault fixture) : IClassFixture<ClockedVault>
{
    private TestVault Vault => fixture.Vault;

    private async Task<string> PolicyAsync(params (string Path, string[] Capabilities)[] rules)
    {
        var name = $"p-{Guid.NewGuid():N}";
        var policy = new Policy { Name = name };
        foreach (var (path, capabilities) in rules)
        {
            policy.Rules.Add(new PolicyRule { Path = path, Capabilities = { capabilities } });
        }
        await Vault.Policies.PutAsync(new PutPolicyRequest { Policy = policy }, Vault.As());
        return name;
    }

    private async Task<CreateTokenResponse> TokenAsync(string? parent = null, TimeSpan? ttl = null, params string[] policies)
    {
        var request = new CreateTokenRequest { Policies = { policies } };
        if (ttl is { } t)
        {
            request.Ttl = Duration.FromTimeSpan(t);
        }
        return await Vault.Tokens.CreateAsync(request, Vault.As(parent));
    }

    private async Task SeedAsync(string path, string value)
    {
        await Vault.Kv.PutAsync(new PutSecretRequest { Path = path, Data = { ["v"] = value } }, Vault.As());
    }

    [Fact]
    public async Task NoToken_IsUnauthenticated()
    {
        var ex = await Rpc.FailsWith(StatusCode.Unauthenticated, () => Vault.Kv.GetAsync(new GetSecretRequest { Path = "any" }));
        Assert.Contains("missing token", ex.Status.Detail, StringComparison.Ordinal);
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => Vault.Kv.GetAsync(new GetSecretRequest { Path = "any" }, Vault.As("vt_not-a-real-token")));
    }

    [Fact]
    public async Task ExpiredToken_IsUnauthenticated()
    {
        var root = $"auth-{Guid.NewGuid():N}";
        await SeedAsync($"{root}/s", "x");
        var policy = await PolicyAsync(($"kv/{root}/*", ["read"]));
        var token = await TokenAsync(ttl: TimeSpan.FromSeconds(1), policies: policy);
        Assert.Equal("x", (await Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{root}/s" }, Vault.As(token.Token))).Data["v"]);
        fixture.Clock.Advance(TimeSpan.FromSeconds(1.5));
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{root}/s" }, Vault.As(token.Token)));
    }

    [Fact]
    public async Task RevokedToken_IsUnauthenticated()
    {
        var policy = await PolicyAsync(("kv/*", ["list"]));
        var token = await TokenAsync(policies: policy);
        await Vault.Kv.ListAsync(new ListSecretsRequest(), Vault.As(token.Token));
        await Vault.Tokens.RevokeAsync(new RevokeTokenRequest { Accessor = token.Info.Accessor }, Vault.As());
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => Vault.Kv.ListAsync(new ListSecretsRequest(), Vault.As(token.Token)));
    }

    [Fact]
    public async Task TokenLackingTheCapability_IsPermissionDenied_AndChangesNothing()
    {
        var root = $"auth-{Guid.NewGuid():N}";
        await SeedAsync($"{root}/s", "original");
        var readOnly = await TokenAsync(policies: await PolicyAsync(($"kv/{root}/*", ["read"])));
        var ex = await Rpc.FailsWith(StatusCode.PermissionDenied, () => Vault.Kv.PutAsync(new PutSecretRequest { Path = $"{root}/s", Data = { ["v"] = "changed" } }, Vault.As(readOnly.Token)));
        Assert.Contains($"kv/{root}/s", ex.Status.Detail, StringComparison.Ordinal);
        await Rpc.FailsWith(StatusCode.PermissionDenied, () => Vault.Kv.GetAsync(new GetSecretRequest { Path = "elsewhere/s" }, Vault.As(readOnly.Token)));
        await Rpc.FailsWith(StatusCode.PermissionDenied, () => Vault.Kv.DestroyAsync(new DestroySecretRequest { Path = $"{root}/s", Versions = { 1 } }, Vault.As(readOnly.Token)));
        await Rpc.FailsWith(StatusCode.PermissionDenied, () => Vault.Policies.ListAsync(new ListPoliciesRequest(), Vault.As(readOnly.Token)));
        await Rpc.FailsWith(StatusCode.PermissionDenied, () => Vault.System.SealAsync(new SealRequest(), Vault.As(readOnly.Token)));
        Assert.Equal("original", (await Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{root}/s" }, Vault.As(readOnly.Token))).Data["v"]);
        Assert.Equal(1UL, (await Vault.Kv.GetMetadataAsync(new GetMetadataRequest { Path = $"{root}/s" }, Vault.As())).CurrentVersion);
        Assert.False((await Vault.System.StatusAsync(new StatusRequest())).Sealed);
    }

    [Fact]
    public async Task CreateNeedsCreate_UpdateNeedsUpdate()
    {
        var root = $"auth-{Guid.NewGuid():N}";
        var createOnly = await TokenAsync(policies: await PolicyAsync(($"kv/{root}/*", ["create", "read"])));
        await Vault.Kv.PutAsync(new PutSecretRequest { Path = $"{root}/new", Data = { ["v"] = "1" } }, Vault.As(createOnly.Token));
        await Rpc.FailsWith(StatusCode.PermissionDenied, () => Vault.Kv.PutAsync(new PutSecretRequest { Path = $"{root}/new", Data = { ["v"] = "2" } }, Vault.As(createOnly.Token)));
    }

    [Fact]
    public async Task Deny_BeatsAllow()
    {
        var root = $"auth-{Guid.NewGuid():N}";
        await SeedAsync($"{root}/open/s", "visible");
        await SeedAsync($"{root}/secret/s", "hidden");
        var allow = await PolicyAsync(($"kv/{root}/*", ["read", "list"]));
        var deny = await PolicyAsync(($"kv/{root}/secret/*", ["deny"]));
        var token = await TokenAsync(policies: [allow, deny]);
        Assert.Equal("visible", (await Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{root}/open/s" }, Vault.As(token.Token))).Data["v"]);
        await Rpc.FailsWith(StatusCode.PermissionDenied, () => Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{root}/secret/s" }, Vault.As(token.Token)));

        // The same within one policy, whatever the rule order.
        var mixed = await TokenAsync(policies: await PolicyAsync(($"kv/{root}/secret/*", ["deny"]), ($"kv/{root}/*", ["admin"])));
        await Rpc.FailsWith(StatusCode.PermissionDenied, () => Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{root}/secret/s" }, Vault.As(mixed.Token)));
    }

    [Fact]
    public async Task PlusMatchesExactlyOneSegment()
    {
        var root = $"auth-{Guid.NewGuid():N}";
        await SeedAsync($"{root}/team-a/db", "a");
        await SeedAsync($"{root}/team-a/deep/db", "deep");
        var token = await TokenAsync(policies: await PolicyAsync(($"kv/{root}/+/db", ["read"])));
        Assert.Equal("a", (await Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{root}/team-a/db" }, Vault.As(token.Token))).Data["v"]);
        await Rpc.FailsWith(StatusCode.PermissionDenied, () => Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{root}/team-a/deep/db" }, Vault.As(token.Token)));
    }

    [Fact]
    public async Task RevokingAParent_KillsItsChildrenAndGrandchildren()
    {
        var policy = await PolicyAsync(("kv/*", ["list"]), ("auth/token/create", ["create"]));
        var parent = await TokenAsync(policies: policy);
        var child = await TokenAsync(parent.Token, policies: policy);
        var grandchild = await TokenAsync(child.Token, policies: policy);
        Assert.Equal(parent.Info.Accessor, child.Info.ParentAccessor);
        await Vault.Kv.ListAsync(new ListSecretsRequest(), Vault.As(grandchild.Token));

        var revoked = await Vault.Tokens.RevokeAsync(new RevokeTokenRequest(), Vault.As(parent.Token));
        Assert.Equal(3U, revoked.Revoked);
        foreach (var token in new[] { parent, child, grandchild })
        {
            await Rpc.FailsWith(StatusCode.Unauthenticated, () => Vault.Kv.ListAsync(new ListSecretsRequest(), Vault.As(token.Token)));
        }
    }

    [Fact]
    public async Task AChildCannotHoldAPolicyItsParentLacks()
    {
        var mine = await PolicyAsync(("kv/*", ["list"]), ("auth/token/create", ["create"]));
        var other = await PolicyAsync(("kv/*", ["admin"]));
        var parent = await TokenAsync(policies: mine);
        await Rpc.FailsWith(StatusCode.PermissionDenied, () => Vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { other } }, Vault.As(parent.Token)));
    }

    [Fact]
    public async Task Renew_ExtendsButNeverPastMaxTtl_AndLookupByAccessorNeedsAPolicy()
    {
        var policy = await PolicyAsync(("kv/*", ["list"]));
        var token = await Vault.Tokens.CreateAsync(new CreateTokenRequest
        {
            Policies = { policy },
            Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(1)),
            MaxTtl = Duration.FromTimeSpan(TimeSpan.FromMinutes(2)),
        }, Vault.As());
        var renewed = await Vault.Tokens.RenewAsync(new RenewTokenRequest { Increment = Duration.FromTimeSpan(TimeSpan.FromHours(5)) }, Vault.As(token.Token));
        Assert.Equal(token.Info.MaxExpiresAt, renewed.ExpiresAt);

        var self = await Vault.Tokens.LookupAsync(new LookupTokenRequest(), Vault.As(token.Token));
        Assert.Equal(token.Info.Accessor, self.Accessor);
        var rootInfo = await Vault.Tokens.LookupAsync(new LookupTokenRequest(), Vault.As());
        await Rpc.FailsWith(StatusCode.PermissionDenied, () => Vault.Tokens.LookupAsync(new LookupTokenRequest { Accessor = rootInfo.Accessor }, Vault.As(token.Token)));
        Assert.Equal([policy], (await Vault.Tokens.LookupAsync(new LookupTokenRequest { Accessor = token.Info.Accessor }, Vault.As())).Policies);
    }

    [Fact]
    public async Task AChildDiesWhenItsParentExpires()
    {
        var policy = await PolicyAsync(("kv/*", ["list"]), ("auth/token/create", ["create"]));
        var parent = await TokenAsync(ttl: TimeSpan.FromSeconds(1), policies: policy);
        var child = await TokenAsync(parent.Token, ttl: TimeSpan.FromHours(1), policies: policy);
        await Vault.Kv.ListAsync(new ListSecretsRequest(), Vault.As(child.Token));
        fixture.Clock.Advance(TimeSpan.FromSeconds(1.5));
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => Vault.Kv.ListAsync(new ListSecretsRequest(), Vault.As(child.Token)));
    }

    [Theory]
    [InlineData(0.5, "ttl")]
    [InlineData(4000 * 24 * 3600.0, "ttl")]
    public async Task AnOutOfRangeTtl_IsInvalidArgument_AndCreatesNoToken(double seconds, string field)
    {
        var ex = await Rpc.FailsWith(StatusCode.InvalidArgument, () => Vault.Tokens.CreateAsync(new CreateTokenRequest
        {
            Ttl = Duration.FromTimeSpan(TimeSpan.FromSeconds(seconds)),
            MaxTtl = Duration.FromTimeSpan(TimeSpan.FromDays(5000)),
            DisplayName = $"refused-{field}-{seconds}",
        }, Vault.As()));
        Assert.StartsWith(field + ":", ex.Status.Detail, StringComparison.Ordinal);
        DataDirectoryScan.AssertNoneAppear(Vault.DataDir, [$"refused-{field}-{seconds}"]);
    }

    [Fact]
    public async Task AMalformedDuration_IsInvalidArgument()
    {
        var ex = await Rpc.FailsWith(StatusCode.InvalidArgument, () => Vault.Tokens.CreateAsync(new CreateTokenRequest
        {
            Ttl = new Duration { Seconds = long.MaxValue },
        }, Vault.As()));
        Assert.StartsWith("ttl:", ex.Status.Detail, StringComparison.Ordinal);
    }
}
