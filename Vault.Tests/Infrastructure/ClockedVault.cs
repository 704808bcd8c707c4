using Microsoft.Extensions.Time.Testing;

namespace Vault.Tests.Infrastructure;

/// <summary>
/// One initialised vault shared by a test class, on a clock the tests move: a TTL runs out when a
/// test says so, not after a real wait. The tests of one class run one at a time, so moving the
/// clock never surprises another test; what a test leaves live (a token with a TTL) it must not
/// rely on after moving the clock. Read-only audit entries are made durable before their replies
/// (a zero window), so nothing in the vault waits for the clock to move on its own.
/// </summary>
public sealed class ClockedVault : IAsyncLifetime
{
    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);

    public TestVault Vault { get; private set; } = null!;

    public async Task InitializeAsync() => Vault = await TestVault.StartInitializedOnAsync(Clock);

    public async Task DisposeAsync() => await Vault.DisposeAsync();
}
