using Grpc.Core;
using Vault.Protocol.V1;

namespace Vault.Tests.Infrastructure;

public sealed class SmokeTests
{
    [Fact]
    public async Task PutThenGet_ReturnsTheValue()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var put = new PutSecretRequest { Path = "apps/billing/db" };
        put.Data["password"] = "s3cr3t-smoke";
        var written = await vault.Kv.PutAsync(put, vault.As());
        var read = await vault.Kv.GetAsync(new GetSecretRequest { Path = "apps/billing/db" }, vault.As());
        Assert.Equal(1UL, written.Version);
        Assert.Equal("s3cr3t-smoke", read.Data["password"]);
    }

    [Fact]
    public async Task Get_WithoutToken_IsUnauthenticated()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await vault.Kv.GetAsync(new GetSecretRequest { Path = "x" }));
        Assert.Equal(StatusCode.Unauthenticated, ex.StatusCode);
    }
}
