using Grpc.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Vault.Client;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Client;

/// <summary>AddVault (KV secrets as configuration) and AddVaultClient (dependency injection) against a real vault.</summary>
public sealed class ConfigurationTests
{
    /// <summary>
    /// Disposing the configuration while a reload's read is in flight ends the polling quietly: the
    /// cancelled call surfaces as an RpcException (Cancelled), which once escaped Dispose and failed
    /// a full test run. Reloads every millisecond, disposed at varying moments, many times.
    /// </summary>
    [Fact]
    public async Task DisposingTheConfiguration_WhileAReloadIsInFlight_NeverThrows()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var path = $"apps/dispose-{Guid.NewGuid():N}/db";
        await vault.Kv.PutAsync(new PutSecretRequest { Path = path, Data = { ["password"] = "p" } }, vault.As());
        using var client = new VaultClient(new VaultClientOptions { Address = vault.Address, Token = vault.RootToken });
        for (var i = 0; i < 60; i++)
        {
            var configuration = (ConfigurationRoot)new ConfigurationBuilder()
                .AddVault(client, o =>
                {
                    o.Map(path);
                    o.ReloadInterval = TimeSpan.FromMilliseconds(1);
                })
                .Build();
            await Task.Delay(i % 7);
            configuration.Dispose();
        }
    }

    [Fact]
    public async Task AddVault_PicksUpAChangedSecret_WithoutARestart_AndFiresTheChangeToken()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var path = $"apps/billing-{Guid.NewGuid():N}/db";
        await vault.Kv.PutAsync(new PutSecretRequest { Path = path, Data = { ["username"] = "billing", ["password"] = "first-Secret-1" } }, vault.As());
        using var client = await ClientKit.AppClientAsync(vault, ($"kv/{path}", ["read"]));

        using var configuration = (ConfigurationRoot)new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Database:host"] = "db.internal" })
            .AddVault(client, o =>
            {
                o.Map(path, "Database");
                o.Map(path);
                o.ReloadInterval = TimeSpan.FromMilliseconds(200);
            })
            .Build();
        var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var subscription = ChangeToken.OnChange(configuration.GetReloadToken, () => changed.TrySetResult());

        Assert.Equal("first-Secret-1", configuration["Database:password"]);
        Assert.Equal("billing", configuration["Database:username"]);
        Assert.Equal("db.internal", configuration["Database:host"]);
        Assert.Equal("first-Secret-1", configuration[$"{path.Replace('/', ':')}:password"]);

        await vault.Kv.PutAsync(new PutSecretRequest { Path = path, Data = { ["username"] = "billing", ["password"] = "second-Secret-2" } }, vault.As());
        await changed.Task.WaitAsync(TimeSpan.FromSeconds(15));

        Assert.Equal("second-Secret-2", configuration["Database:password"]);
        Assert.Equal("second-Secret-2", configuration.GetSection("Database")["password"]);
    }

    [Fact]
    public async Task AddVault_FailsTheLoadForAMissingSecret_UnlessOptional()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        using var client = new VaultClient(new VaultClientOptions { Address = vault.Address, Token = vault.RootToken });

        var missing = Assert.Throws<RpcException>(() => new ConfigurationBuilder().AddVault(client, o => o.Map("apps/none")).Build());
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);

        using var optional = (ConfigurationRoot)new ConfigurationBuilder().AddVault(client, o => { o.Map("apps/none"); o.Optional = true; o.ReloadInterval = null; }).Build();
        Assert.Empty(optional.AsEnumerable());
    }

    [Fact]
    public async Task AddVaultClient_BindsItsOptionsFromConfiguration_AndResolvesAWorkingClient()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "apps/di", Data = { ["k"] = "v" } }, vault.As());
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Vault:Address"] = vault.Address,
            ["Vault:Token"] = vault.RootToken,
            ["Vault:ConnectTimeout"] = "00:00:03",
        }).Build();
        await using var services = new ServiceCollection().AddLogging().AddVaultClient(configuration.GetSection("Vault")).BuildServiceProvider();

        var client = services.GetRequiredService<VaultClient>();

        Assert.Same(client, services.GetRequiredService<VaultClient>());
        Assert.Equal(TimeSpan.FromSeconds(3), services.GetRequiredService<IOptions<VaultClientOptions>>().Value.ConnectTimeout);
        Assert.Equal("v", (await client.GetSecretAsync("apps/di")).Data["k"]);
    }

    [Fact]
    public void AddVaultClient_WithBadOptions_FailsNamingEachProblem()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Vault:Address"] = "127.0.0.1:8200",
            ["Vault:RoleId"] = "role-id-without-secret",
            ["Vault:CaCertificateFile"] = "/no/such/ca.pem",
        }).Build();
        using var services = new ServiceCollection().AddVaultClient(configuration.GetSection("Vault")).BuildServiceProvider();

        var ex = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<VaultClient>());

        Assert.Contains(ex.Failures, f => f.StartsWith("Address:", StringComparison.Ordinal));
        Assert.Contains(ex.Failures, f => f.StartsWith("SecretId:", StringComparison.Ordinal));
        Assert.Contains(ex.Failures, f => f.StartsWith("CaCertificateFile:", StringComparison.Ordinal));
    }
}
