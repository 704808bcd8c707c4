using Google.Protobuf.WellKnownTypes;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Security;

/// <summary>
/// The vault the authorisation matrix runs against, with a revoked and an expiring token that
/// both hold a policy granting everything: only the token check stands between them and success.
/// </summary>
public sealed class MatrixVault : IAsyncLifetime
{
    public TestVault Vault { get; private set; } = null!;

    public string RevokedToken { get; private set; } = "";

    public string ExpiringToken { get; private set; } = "";

    private DateTimeOffset _expiringTokenDiesAt;

    public async Task InitializeAsync()
    {
        Vault = await TestVault.StartInitializedAsync();
        var everything = RpcMatrix.UniqueName();
        await Vault.Policies.PutAsync(new PutPolicyRequest { Policy = RpcMatrix.PolicyNamed(everything, "*", "admin") }, Vault.As());

        var expiring = await Vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { everything }, Ttl = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) }, Vault.As());
        ExpiringToken = expiring.Token;
        _expiringTokenDiesAt = expiring.Info.ExpiresAt.ToDateTimeOffset();

        var revoked = await Vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { everything } }, Vault.As());
        await Vault.Tokens.RevokeAsync(new RevokeTokenRequest { Accessor = revoked.Info.Accessor }, Vault.As());
        RevokedToken = revoked.Token;
    }

    /// <summary>Waits (once for the whole run) until <see cref="ExpiringToken"/> has expired.</summary>
    public async Task<string> ExpiredTokenAsync()
    {
        var wait = _expiringTokenDiesAt - DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(250);
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait);
        }
        return ExpiringToken;
    }

    public async Task DisposeAsync() => await Vault.DisposeAsync();
}
