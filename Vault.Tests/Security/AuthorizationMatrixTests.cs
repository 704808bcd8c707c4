using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Protocol.V1;
using Microsoft.Extensions.DependencyInjection;
using Vault.Server.Auth;
using Vault.Server.Grpc;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Security;

/// <summary>
/// Every vault.v1 RPC, found through the protobuf descriptors, against every kind of caller: no
/// token, a revoked or expired token, a token that lacks the capability, and one that holds
/// exactly the capability the API contract names.
/// </summary>
public sealed class AuthorizationMatrixTests(MatrixVault fixture) : IClassFixture<MatrixVault>
{
    private TestVault Vault => fixture.Vault;

    private CallInvoker Invoker => Vault.Channel.CreateCallInvoker();

    public static IEnumerable<object[]> AuthenticatedRpcs => RpcMatrix.Rows(authenticatedOnly: true);

    public static IEnumerable<object[]> AllRpcs => RpcMatrix.Rows(authenticatedOnly: false);

    [Fact]
    public void EveryVaultRpc_HasAMatrixRow_AndEveryRowAnRpc()
    {
        var methods = DescriptorInvoker.AllMethods.Select(DescriptorInvoker.NameOf).ToHashSet(StringComparer.Ordinal);
        Assert.True(methods.Count >= 24, $"only {methods.Count} vault.v1 methods found through the descriptors");
        var missing = methods.Where(m => RpcMatrix.Cases.All(c => c.Method != m)).ToList();
        Assert.True(missing.Count == 0, $"RPCs with no row in {nameof(RpcMatrix)}: {string.Join(", ", missing)}");
        var stale = RpcMatrix.Cases.Where(c => !methods.Contains(c.Method)).Select(c => c.Name).ToList();
        Assert.True(stale.Count == 0, $"rows for RPCs that do not exist: {string.Join(", ", stale)}");
        var streaming = DescriptorInvoker.AllMethods.Where(m => m.IsClientStreaming).Select(DescriptorInvoker.NameOf).ToList();
        Assert.True(streaming.Count == 0, $"client-streaming RPCs need their own matrix cases: {string.Join(", ", streaming)}");
    }

    [Theory]
    [MemberData(nameof(AuthenticatedRpcs))]
    public async Task Rpc_WithoutABearerToken_IsUnauthenticated_AndChangesNothing(string rpc)
    {
        await AssertRefusedAsync(rpc, new CallOptions(), StatusCode.Unauthenticated);
        // The root token itself, under another scheme, is not a bearer token.
        await AssertRefusedAsync(rpc, new CallOptions(new Metadata { { "authorization", $"Basic {Vault.RootToken}" } }), StatusCode.Unauthenticated);
    }

    [Theory]
    [MemberData(nameof(AuthenticatedRpcs))]
    public async Task Rpc_WithRevokedToken_IsUnauthenticated_AndChangesNothing(string rpc) =>
        await AssertRefusedAsync(rpc, Vault.As(fixture.RevokedToken), StatusCode.Unauthenticated);

    [Theory]
    [MemberData(nameof(AuthenticatedRpcs))]
    public async Task Rpc_WithExpiredToken_IsUnauthenticated_AndChangesNothing(string rpc) =>
        await AssertRefusedAsync(rpc, Vault.As(await fixture.ExpiredTokenAsync()), StatusCode.Unauthenticated);

    [Theory]
    [MemberData(nameof(AuthenticatedRpcs))]
    public async Task Rpc_WithEveryOtherCapabilityOnThePath_IsPermissionDenied_AndChangesNothing(string rpc)
    {
        var row = RpcMatrix.Case(rpc);
        var prepared = await row.PrepareAsync(Vault);
        var access = prepared.Access!;
        var others = RpcMatrix.Capabilities.Except(access.AnyOf).ToArray();
        var token = await TokenWithAsync(access.RuleGlob, others, access.AlsoRead);
        await AssertRefusedAsync(row, prepared, Vault.As(token), StatusCode.PermissionDenied);
    }

    [Theory]
    [MemberData(nameof(AuthenticatedRpcs))]
    public async Task Rpc_WithTheCapabilityOnlyOnASiblingPath_IsPermissionDenied_AndChangesNothing(string rpc)
    {
        var row = RpcMatrix.Case(rpc);
        var prepared = await row.PrepareAsync(Vault);
        var access = prepared.Access!;
        var glob = access.RuleGlob;
        var sibling = glob.EndsWith("/*", StringComparison.Ordinal) ? glob[..^2] + "-elsewhere/*" : glob + "-elsewhere";
        var token = await TokenWithAsync(sibling, access.AnyOf, access.AlsoRead);
        await AssertRefusedAsync(row, prepared, Vault.As(token), StatusCode.PermissionDenied);
    }

    [Theory]
    [MemberData(nameof(AuthenticatedRpcs))]
    public async Task Rpc_WithExactlyTheRequiredCapabilityOnThePath_Succeeds(string rpc)
    {
        var row = RpcMatrix.Case(rpc);
        var prepared = await row.PrepareAsync(Vault);
        var access = prepared.Access!;
        var token = await TokenWithAsync(access.RuleGlob, [access.AnyOf[0]], access.AlsoRead);
        try
        {
            var status = await DescriptorInvoker.StatusOfAsync(() => CallAsync(row, prepared, Vault.As(token)));
            Assert.True(status.StatusCode == prepared.Allowed,
                $"{row.Name} with only '{access.AnyOf[0]}' on '{access.RuleGlob}' answered {status.StatusCode}: {status.Detail}");
        }
        finally
        {
            await UnsealIfSealedAsync();
        }
    }

    /// <summary>
    /// The rows are written from the API contract; the server decides from its one table,
    /// <see cref="AccessRules"/>. They must say the same thing — every access the RPC needs, no
    /// more — so the table cannot drift from the contract the other tests hold the server to.
    /// </summary>
    [Theory]
    [MemberData(nameof(AuthenticatedRpcs))]
    public async Task Rpc_Row_NeedsExactlyWhatTheServersAccessTableSays(string rpc)
    {
        var row = RpcMatrix.Case(rpc);
        var prepared = await row.PrepareAsync(Vault);
        var access = prepared.Access!;
        var caller = Vault.Services.GetRequiredService<TokenManager>().Resolve(await TokenWithAsync("sys/none", ["read"]));

        var check = Vault.Services.GetRequiredService<AccessRules>().For($"/{row.Method}", prepared.Request, caller);

        Assert.NotNull(check);
        Assert.Equal(access.Path, check.Primary.Path);
        string[] expected = [$"{access.Path} {Parse(access.AnyOf)}", .. (access.AlsoRead ?? []).Select(path => $"{path} {Capability.Read}")];
        Assert.Equal(expected.Order(StringComparer.Ordinal), check.All.Select(a => $"{a.Path} {a.AnyOf}").Order(StringComparer.Ordinal));
    }

    private static Capability Parse(string[] names) =>
        names.Aggregate(Capability.None, (all, name) => all | System.Enum.Parse<Capability>(name, ignoreCase: true));

    public static IEnumerable<object[]> TokenOnlyRpcs => RpcMatrix.Cases.Where(RpcMatrix.IsTokenOnly).Select(c => new object[] { c.Name });

    /// <summary>An RPC that acts for the caller's own person needs a live token, and nothing more; the server's table says the same (no access).</summary>
    [Theory]
    [MemberData(nameof(TokenOnlyRpcs))]
    public async Task TokenOnlyRpc_NeedsALiveToken_ButNoPolicy(string rpc)
    {
        var row = RpcMatrix.Case(rpc);
        var prepared = await row.PrepareAsync(Vault);
        Assert.Null(prepared.Access);
        var caller = Vault.Services.GetRequiredService<TokenManager>().Resolve(prepared.AsToken);
        Assert.Null(Vault.Services.GetRequiredService<AccessRules>().For($"/{row.Method}", prepared.Request, caller));

        await AssertRefusedAsync(row, prepared, new CallOptions(), StatusCode.Unauthenticated);
        await AssertRefusedAsync(row, prepared, Vault.As(fixture.RevokedToken), StatusCode.Unauthenticated);
        var status = await DescriptorInvoker.StatusOfAsync(() => CallAsync(row, prepared, Vault.As(prepared.AsToken)));
        Assert.True(status.StatusCode == StatusCode.OK, $"{row.Name} with the person's own token answered {status.StatusCode}: {status.Detail}");
    }

    [Theory]
    [MemberData(nameof(AllRpcs))]
    public async Task PublicRpc_WithoutAToken_IsNotRefusedForLackOfOne(string rpc)
    {
        var row = RpcMatrix.Case(rpc);
        if (!RpcMatrix.IsPublic(row))
        {
            return;
        }
        var prepared = await row.PrepareAsync(Vault);
        var status = await DescriptorInvoker.StatusOfAsync(() => CallAsync(row, prepared, new CallOptions()));
        Assert.True(status.StatusCode is not (StatusCode.Unauthenticated or StatusCode.PermissionDenied or StatusCode.Internal or StatusCode.Unknown),
            $"{row.Name} without a token answered {status.StatusCode}: {status.Detail}");
        Assert.False((await Vault.System.StatusAsync(new StatusRequest())).Sealed, $"{row.Name} left the vault sealed");
    }

    private async Task AssertRefusedAsync(string rpc, CallOptions options, StatusCode expected)
    {
        var row = RpcMatrix.Case(rpc);
        await AssertRefusedAsync(row, await row.PrepareAsync(Vault), options, expected);
    }

    private async Task AssertRefusedAsync(RpcCase row, PreparedCall prepared, CallOptions options, StatusCode expected)
    {
        var before = prepared.State is null ? "" : await prepared.State();
        try
        {
            var status = await DescriptorInvoker.StatusOfAsync(() => CallAsync(row, prepared, options));
            Assert.True(status.StatusCode == expected, $"{row.Name}: expected {expected}, got {status.StatusCode}: {status.Detail}");
            var after = prepared.State is null ? "" : await prepared.State();
            Assert.True(before == after, $"{row.Name} was refused ({expected}) but changed state:\nbefore: {before}\nafter:  {after}");
        }
        finally
        {
            await UnsealIfSealedAsync();
        }
    }

    private Task CallAsync(RpcCase row, PreparedCall prepared, CallOptions options) =>
        DescriptorInvoker.CallAsync(Invoker, DescriptorInvoker.Find(row.Method), prepared.Request, options);

    /// <summary>A token (made by root) whose only policy has one rule: <paramref name="capabilities"/> on <paramref name="glob"/>.</summary>
    private async Task<string> TokenWithAsync(string glob, string[] capabilities, string[]? alsoRead = null)
    {
        var name = RpcMatrix.UniqueName();
        var policy = RpcMatrix.PolicyNamed(name, glob, capabilities);
        foreach (var path in alsoRead ?? [])
        {
            policy.Rules.Add(new PolicyRule { Path = path, Capabilities = { "read" } });
        }
        await Vault.Policies.PutAsync(new PutPolicyRequest { Policy = policy }, Vault.As());
        var created = await Vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { name }, Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(10)) }, Vault.As());
        return created.Token;
    }

    // Seal is global: a Seal call that went through (rightly or not) must not take the rest of
    // the matrix down with it.
    private async Task UnsealIfSealedAsync()
    {
        if ((await Vault.System.StatusAsync(new StatusRequest())).Sealed)
        {
            await Vault.UnsealAsync();
        }
    }
}
