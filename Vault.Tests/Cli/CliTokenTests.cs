using System.Text.Json;
using Vault.Protocol.V1;

namespace Vault.Tests.Cli;

public sealed class CliTokenTests(CliVaultFixture fixture) : IClassFixture<CliVaultFixture>
{
    private readonly VaultCtl _ctl = fixture.Ctl();

    /// <summary>A policy granting read/list on kv/{prefix}/* only, written straight over gRPC.</summary>
    private async Task<(string Policy, string Prefix)> ReadOnlyPolicyAsync()
    {
        var name = CliVaultFixture.Unique("ro");
        var prefix = $"cli/{Guid.NewGuid():N}";
        var rule = new PolicyRule { Path = $"kv/{prefix}/*" };
        rule.Capabilities.Add(["read", "list"]);
        var policy = new Policy { Name = name };
        policy.Rules.Add(rule);
        await fixture.Vault.Policies.PutAsync(new PutPolicyRequest { Policy = policy }, fixture.Vault.As());
        return (name, prefix);
    }

    private async Task<JsonElement> CreateTokenAsync(params string[] extra) =>
        (await _ctl.RunAsync(["token", "create", "--json", .. extra])).Json();

    [Fact]
    public async Task TokenCreate_WithPolicyAndTtl_Json_PrintsTokenOnce()
    {
        var (first, _) = await ReadOnlyPolicyAsync();
        var (second, _) = await ReadOnlyPolicyAsync();

        var created = await CreateTokenAsync("--policy", first, "--policy", second, "--ttl", "30m", "--max-ttl", "2h", "--display-name", "ci-job");

        Assert.StartsWith("vt_", created.GetProperty("token").GetString(), StringComparison.Ordinal);
        Assert.Equal(new[] { first, second }.Order(StringComparer.Ordinal), created.GetProperty("policies").EnumerateArray().Select(p => p.GetString()!).Order(StringComparer.Ordinal));
        Assert.Equal(1800, created.GetProperty("ttl_seconds").GetInt64());
        Assert.Equal("ci-job", created.GetProperty("display_name").GetString());
        var lifetime = created.GetProperty("max_expires_at").GetDateTimeOffset() - created.GetProperty("created_at").GetDateTimeOffset();
        Assert.InRange(lifetime, TimeSpan.FromMinutes(119), TimeSpan.FromMinutes(121));
        Assert.False(string.IsNullOrEmpty(created.GetProperty("parent_accessor").GetString()));
    }

    [Fact]
    public async Task TokenCreate_WithoutTtl_UsesDocumentedDefaults()
    {
        var created = await CreateTokenAsync();

        Assert.Equal(3600, created.GetProperty("ttl_seconds").GetInt64());
        var maxLifetime = created.GetProperty("max_expires_at").GetDateTimeOffset() - created.GetProperty("created_at").GetDateTimeOffset();
        Assert.InRange(maxLifetime, TimeSpan.FromHours(23.9), TimeSpan.FromHours(24.1));
    }

    [Fact]
    public async Task TokenCreate_Human_PrintsTokenAndAccessor()
    {
        var output = (await _ctl.RunAsync("token", "create", "--display-name", "human")).Ok();

        Assert.Matches("(?m)^Token +vt_[^ ]+$", output);
        Assert.Matches("(?m)^Accessor +[^ ]+$", output);
        Assert.Matches("(?m)^TTL +1h$", output);
    }

    [Fact]
    public async Task TokenCreate_Orphan_HasNoParent()
    {
        var created = await CreateTokenAsync("--orphan");

        Assert.False(created.TryGetProperty("parent_accessor", out _));
    }

    [Fact]
    public async Task TokenCreate_BadTtl_IsOneLineUsageError()
    {
        var result = await _ctl.RunAsync("token", "create", "--ttl", "soon");

        result.OneLineError(1, "--ttl: 'soon' is not a duration");
    }

    [Fact]
    public async Task TokenLookup_ByAccessor_ShowsTokenButNotItsSecret()
    {
        var (policy, _) = await ReadOnlyPolicyAsync();
        var created = await CreateTokenAsync("--policy", policy);
        var accessor = created.GetProperty("accessor").GetString()!;

        var result = await _ctl.RunAsync("token", "lookup", "--accessor", accessor, "--json");
        var human = (await _ctl.RunAsync("token", "lookup", "--accessor", accessor)).Ok();

        var info = result.Json();
        Assert.Equal(accessor, info.GetProperty("accessor").GetString());
        Assert.Equal([policy], info.GetProperty("policies").EnumerateArray().Select(p => p.GetString()));
        Assert.False(info.TryGetProperty("token", out _));
        Assert.DoesNotContain(created.GetProperty("token").GetString()!, result.StdOut + human, StringComparison.Ordinal);
        Assert.Matches($"(?m)^Accessor +{accessor}$", human);
    }

    [Fact]
    public async Task TokenFlag_OverridesVaultTokenEnvironment()
    {
        var created = await CreateTokenAsync("--display-name", "flagged");
        var ctl = fixture.Ctl(); // VAULT_TOKEN is the root token

        var self = (await ctl.RunAsync("token", "lookup", "--token", created.GetProperty("token").GetString()!, "--json")).Json();
        var root = (await ctl.RunAsync("token", "lookup", "--json")).Json();

        Assert.Equal(created.GetProperty("accessor").GetString(), self.GetProperty("accessor").GetString());
        Assert.Equal("flagged", self.GetProperty("display_name").GetString());
        Assert.Equal(["root"], root.GetProperty("policies").EnumerateArray().Select(p => p.GetString()));
    }

    [Fact]
    public async Task TokenRenew_ByAccessorWithIncrement_ExtendsExpiry()
    {
        var created = await CreateTokenAsync("--ttl", "10m", "--max-ttl", "4h");
        var accessor = created.GetProperty("accessor").GetString()!;

        var renewed = (await _ctl.RunAsync("token", "renew", "--accessor", accessor, "--increment", "2h", "--json")).Json();

        var before = created.GetProperty("expires_at").GetDateTimeOffset();
        var after = renewed.GetProperty("expires_at").GetDateTimeOffset();
        Assert.InRange(after - before, TimeSpan.FromMinutes(105), TimeSpan.FromMinutes(115));
    }

    [Fact]
    public async Task TokenRenew_Self_KeepsTokenAlive()
    {
        var created = await CreateTokenAsync("--ttl", "10m");
        var child = new VaultCtl(fixture.Vault.Address, created.GetProperty("token").GetString());

        var renewed = (await child.RunAsync("token", "renew", "--json")).Json();

        Assert.Equal(created.GetProperty("accessor").GetString(), renewed.GetProperty("accessor").GetString());
        Assert.True(renewed.GetProperty("expires_at").GetDateTimeOffset() >= created.GetProperty("expires_at").GetDateTimeOffset());
    }

    [Fact]
    public async Task TokenRevoke_ByAccessor_RevokesTokenAndChildren()
    {
        var parent = await CreateTokenAsync();
        var parentToken = parent.GetProperty("token").GetString()!;
        var child = (await _ctl.RunAsync("token", "create", "--token", parentToken, "--json")).Json();

        var revoked = (await _ctl.RunAsync("token", "revoke", "--accessor", parent.GetProperty("accessor").GetString()!, "--json")).Json();
        var childAfter = await new VaultCtl(fixture.Vault.Address, child.GetProperty("token").GetString()).RunAsync("token", "lookup");

        Assert.Equal(2U, revoked.GetProperty("revoked").GetUInt32());
        childAfter.OneLineError(2, "vaultctl: Unauthenticated: ");
    }

    [Fact]
    public async Task TokenRevoke_Self_RevokesCallingToken()
    {
        var created = await CreateTokenAsync();
        var child = new VaultCtl(fixture.Vault.Address, created.GetProperty("token").GetString());

        var revoke = (await child.RunAsync("token", "revoke")).Ok();
        var after = await child.RunAsync("token", "lookup");

        Assert.Equal("Revoked 1 token\n", revoke);
        after.OneLineError(2, "vaultctl: Unauthenticated: ");
    }

    [Fact]
    public async Task RestrictedToken_WritingOutsideItsPolicy_IsOneLinePermissionDenied()
    {
        var (policy, prefix) = await ReadOnlyPolicyAsync();
        (await _ctl.RunAsync("kv", "put", $"{prefix}/app", "k=v")).Ok();
        var created = await CreateTokenAsync("--policy", policy);
        var restricted = new VaultCtl(fixture.Vault.Address, created.GetProperty("token").GetString());

        var read = await restricted.RunAsync("kv", "get", $"{prefix}/app", "--field", "k");
        var write = await restricted.RunAsync("kv", "put", $"{prefix}/app", "k=w");

        Assert.Equal("v\n", read.Ok());
        write.OneLineError(2, "vaultctl: PermissionDenied: ");
    }

    [Fact]
    public async Task MissingToken_IsOneLineUnauthenticated()
    {
        var result = await new VaultCtl(fixture.Vault.Address).RunAsync("kv", "list");

        result.OneLineError(2, "vaultctl: Unauthenticated: missing token");
    }
}
