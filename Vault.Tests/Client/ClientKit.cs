using Google.Protobuf.WellKnownTypes;
using Vault.Client;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Client;

/// <summary>What the client-library tests share: an application's token and client, a dynamic role, lease lookups.</summary>
internal static class ClientKit
{
    public static LeaseService.LeaseServiceClient Leases(this TestVault vault) => new(vault.Channel);

    /// <summary>A client with a token that holds only <paramref name="rules"/> (path, capabilities) — what an application gets.</summary>
    public static async Task<VaultClient> AppClientAsync(TestVault vault, params (string Path, string[] Capabilities)[] rules)
    {
        var name = RotationKit.UniqueName("app");
        var policy = new Policy { Name = name };
        foreach (var (path, capabilities) in rules)
        {
            policy.Rules.Add(new PolicyRule { Path = path, Capabilities = { capabilities } });
        }
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = policy }, vault.As());
        var token = await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { name } }, vault.As());
        return new VaultClient(new VaultClientOptions { Address = vault.Address, Token = token.Token });
    }

    /// <summary>A rotation target on the real server (admin: its superuser) and a dynamic role on it whose users may connect.</summary>
    public static async Task<string> DynamicRoleAsync(TestVault vault, ITargetSystem system, TimeSpan? defaultTtl = null, TimeSpan? maxTtl = null, string? name = null)
    {
        var admin = await RotationKit.PutAdminSecretAsync(vault.Kv, vault.As(), system);
        var account = await system.CreateAccountAsync("Unused-Account-1");
        var target = RotationKit.UniqueName(system.Kind);
        await vault.Targets().PutTargetAsync(new PutTargetRequest { Target = RotationKit.Describe(system, target, account, admin), CurrentPassword = "Unused-Account-1" }, vault.As());
        var role = new DynamicRole { Name = name ?? RotationKit.UniqueName("dyn"), Target = target, MaxTtl = Duration.FromTimeSpan(maxTtl ?? TimeSpan.FromHours(1)) };
        if (defaultTtl is { } ttl)
        {
            role.DefaultTtl = Duration.FromTimeSpan(ttl);
        }
        role.CreationStatements.Add(system.Kind == "postgres" ? "GRANT CONNECT ON DATABASE postgres TO {{name}}" : "GRANT USAGE ON *.* TO {{name}}");
        await vault.Leases().PutDynamicRoleAsync(new PutDynamicRoleRequest { Role = role }, vault.As());
        return role.Name;
    }

    /// <summary>Polls until <paramref name="condition"/> holds, or fails saying what it waited for.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException($"timed out after {timeout.TotalSeconds:F0} s waiting for {what}");
            }
            await Task.Delay(100);
        }
    }

    public static async Task<bool> PostgresUserExistsAsync(TargetSystems systems, string username) =>
        Convert.ToInt64(await systems.PostgresServer.ScalarAsync($"SELECT count(*) FROM pg_roles WHERE rolname = '{username}'"), System.Globalization.CultureInfo.InvariantCulture) > 0;
}
