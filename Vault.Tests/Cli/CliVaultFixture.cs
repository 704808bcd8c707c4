using Vault.Tests.Infrastructure;

namespace Vault.Tests.Cli;

/// <summary>One initialised, unsealed vault shared by a test class; tests use unique paths and names.</summary>
public sealed class CliVaultFixture : IAsyncLifetime
{
    private TestVault? _vault;

    public TestVault Vault => _vault ?? throw new InvalidOperationException("fixture not started");

    /// <summary>vaultctl with VAULT_ADDR and VAULT_TOKEN (root by default) set.</summary>
    public VaultCtl Ctl(string? token = null) => new(Vault.Address, token ?? Vault.RootToken);

    public static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    public async Task InitializeAsync() => _vault = await TestVault.StartInitializedAsync();

    public async Task DisposeAsync()
    {
        if (_vault is not null)
        {
            await _vault.DisposeAsync();
        }
    }
}
