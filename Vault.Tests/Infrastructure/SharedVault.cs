namespace Vault.Tests.Infrastructure;

/// <summary>One initialised vault shared by a test class; tests isolate themselves by unique paths and names.</summary>
public sealed class SharedVault : IAsyncLifetime
{
    public TestVault Vault { get; private set; } = null!;

    public async Task InitializeAsync() => Vault = await TestVault.StartInitializedAsync();

    public async Task DisposeAsync() => await Vault.DisposeAsync();
}
