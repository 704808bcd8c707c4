using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Client;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Client;

/// <summary>A VaultClient that logs in with AppRole and keeps its own token alive, against a real vault.</summary>
public sealed class AppRoleLoginTests
{
    [Fact]
    public async Task Client_LogsInWithAppRole_RenewsItsToken_AndLogsInAgainPastTheMaxTtl()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "apps/approle", Data = { ["k"] = "v" } }, vault.As());
        var (roleId, secretId) = await RoleAsync(vault, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(5));
        using var client = new VaultClient(new VaultClientOptions { Address = vault.Address, RoleId = roleId, SecretId = secretId });

        var accessors = new List<string>();
        var expiries = new Dictionary<string, HashSet<DateTime>>();
        // Until the third token (not for a fixed 12 s): a full run once stalled this loop long
        // enough to see only two tokens in 12 s of wall time.
        var started = System.Diagnostics.Stopwatch.StartNew();
        while (accessors.Count < 3)
        {
            Assert.True(started.Elapsed < TimeSpan.FromSeconds(60), $"only {accessors.Count} tokens in 60 s of 5 s tokens");
            Assert.Equal("v", (await client.GetSecretAsync("apps/approle")).Data["k"]);
            var self = await client.LookupTokenAsync();
            if (accessors.Count == 0 || accessors[^1] != self.Accessor)
            {
                accessors.Add(self.Accessor);
                expiries[self.Accessor] = [];
            }
            expiries[self.Accessor].Add(self.ExpiresAt.ToDateTime());
            Assert.Contains("reader", self.Policies);
            await Task.Delay(250);
        }

        // A 3 s token with a 5 s max: renewed once in its life (at 2 s, up to its max), and replaced
        // by a new login before that max (about every 4 s) — never a refused call, and no login
        // sooner than a renewal would have been due (every 2 s at the most).
        Assert.InRange(accessors.Count, 3, 4);
        Assert.True(started.Elapsed >= TimeSpan.FromSeconds(2 * (accessors.Count - 1)), $"{accessors.Count} tokens in {started.Elapsed.TotalSeconds:F1} s: logging in too often");
        Assert.Contains(expiries.Values, seen => seen.Count >= 2);
    }

    [Fact]
    public async Task Client_WithAWrongSecretId_FailsItsCallsUnauthenticated()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var (roleId, _) = await RoleAsync(vault, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(5));
        using var client = new VaultClient(new VaultClientOptions { Address = vault.Address, RoleId = roleId, SecretId = "not-the-secret-id" });

        var ex = await Assert.ThrowsAsync<RpcException>(() => client.GetSecretAsync("apps/anything"));

        Assert.Equal(StatusCode.Unauthenticated, ex.StatusCode);
    }

    [Fact]
    public void Options_WithATokenAndAppRoleIds_AreRefused()
    {
        var ex = Assert.Throws<ArgumentException>(() => new VaultClient(new VaultClientOptions { Token = "t", RoleId = "r", SecretId = "s" }));
        Assert.Contains("not both", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new VaultClient(new VaultClientOptions { RoleId = "r" }));
    }

    private static async Task<(string RoleId, string SecretId)> RoleAsync(TestVault vault, TimeSpan tokenTtl, TimeSpan tokenMaxTtl)
    {
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "reader", Rules = { new PolicyRule { Path = "kv/apps/approle", Capabilities = { "read" } } } } }, vault.As());
        var appRoles = new AppRoleService.AppRoleServiceClient(vault.Channel);
        var name = RotationKit.UniqueName("role");
        await appRoles.PutRoleAsync(new PutRoleRequest
        {
            Role = new Role { Name = name, Policies = { "reader" }, TokenTtl = Duration.FromTimeSpan(tokenTtl), TokenMaxTtl = Duration.FromTimeSpan(tokenMaxTtl) },
        }, vault.As());
        var roleId = (await appRoles.GetRoleIdAsync(new GetRoleIdRequest { Name = name }, vault.As())).RoleId;
        var secretId = (await appRoles.CreateSecretIdAsync(new CreateSecretIdRequest { Name = name }, vault.As())).SecretId;
        return (roleId, secretId);
    }
}
