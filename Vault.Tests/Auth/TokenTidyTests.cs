using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Vault.Protocol.V1;
using Vault.Server.Auth;
using Vault.Server.Storage;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Auth;

/// <summary>
/// Expired tokens do not stay in the store forever: the reaper deletes their records within the
/// hour (with their accessor and child links), and nothing a user sees changes — an expired token
/// was refused before and is refused after; a live one is untouched.
/// </summary>
public sealed class TokenTidyTests
{
    [Fact]
    public async Task ExpiredTokens_AreDeletedByTheReaper_LiveOnesStay()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await TestVault.StartInitializedOnAsync(clock);
        var store = vault.Services.GetRequiredService<IVaultStore>();
        var shortLived = await vault.Tokens.CreateAsync(new CreateTokenRequest { Ttl = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromHours(1)) }, vault.As());
        var child = await vault.Tokens.CreateAsync(new CreateTokenRequest { Ttl = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromMinutes(30)) }, vault.As(shortLived.Token));
        var longLived = await vault.Tokens.CreateAsync(new CreateTokenRequest
        {
            Ttl = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromHours(10)),
            MaxTtl = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromHours(10)),
        }, vault.As());
        bool Stored(string accessor) => store.Get<TokenAccessorRecord>(Collections.TokenAccessors, accessor) is not null;
        Assert.True(Stored(shortLived.Info.Accessor) && Stored(child.Info.Accessor));

        clock.Advance(TimeSpan.FromHours(2));

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Stored(shortLived.Info.Accessor) || Stored(child.Info.Accessor))
        {
            Assert.True(DateTime.UtcNow < deadline, "the reaper never deleted the expired tokens");
            await Task.Delay(50);
        }
        Assert.Empty(store.List<TokenChildRecord>(Collections.TokenChildren, shortLived.Info.Accessor + "/"));
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => vault.Tokens.LookupAsync(new LookupTokenRequest(), vault.As(shortLived.Token)).ResponseAsync);
        await Rpc.FailsWith(StatusCode.NotFound, () => vault.Tokens.LookupAsync(new LookupTokenRequest { Accessor = child.Info.Accessor }, vault.As()).ResponseAsync);
        Assert.Equal(longLived.Info.Accessor, (await vault.Tokens.LookupAsync(new LookupTokenRequest(), vault.As(longLived.Token))).Accessor);
        Assert.Equal(["root"], (await vault.Tokens.LookupAsync(new LookupTokenRequest(), vault.As())).Policies);
        // Nothing left to tidy.
        Assert.Equal(0, await vault.Services.GetRequiredService<TokenManager>().TidyAsync(CancellationToken.None));
    }
}
