using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Vault.Server.Cluster;
using Vault.Server.Crypto;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Cluster;

/// <summary>
/// The caller's address as the address-bound rules see it: a forwarding node's word for it counts
/// only with a fresh proof made with the keyring, for that method and forwarding node; a client's own header, a stale or altered proof,
/// or a proof from another vault's keyring does not.
/// </summary>
public sealed class ClientAddressTests
{
    private static readonly IPAddress Standby = IPAddress.Parse("10.0.0.6");
    private static readonly IPAddress Client = IPAddress.Parse("192.0.2.7");

    private const string Login = "/vault.v1.AppRoleService/Login";

    private static HttpContext Arriving(IEnumerable<KeyValuePair<string, string>> headers, string path = Login, string? forwardedBy = "n2")
    {
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = Standby;
        context.Request.Path = path;
        if (forwardedBy is not null)
        {
            context.Request.Headers["vault-forwarded-by"] = forwardedBy;
        }
        foreach (var (name, value) in headers)
        {
            context.Request.Headers[name] = value;
        }
        return context;
    }

    [Fact]
    public async Task AForwardedCallCountsAsTheClients_OnlyWithAFreshProofFromThisVaultsKeyring()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await using var other = await TestVault.StartInitializedAsync();
        var barrier = vault.Services.GetRequiredService<SecurityBarrier>();
        var now = DateTimeOffset.UtcNow;
        var vouched = ClientAddress.Vouch(Client, Login, "n2", barrier, now).ToList();

        Assert.Equal(Client, ClientAddress.Of(Arriving(vouched), barrier, now));
        // Only for the method and the node it was made for, on a call that says it was forwarded.
        Assert.Equal(Standby, ClientAddress.Of(Arriving(vouched, path: "/vault.v1.KvService/Get"), barrier, now));
        Assert.Equal(Standby, ClientAddress.Of(Arriving(vouched, forwardedBy: "n3"), barrier, now));
        Assert.Equal(Standby, ClientAddress.Of(Arriving(vouched, forwardedBy: null), barrier, now));
        // Not without the proof, nor with it altered, nor long after, nor from another keyring.
        Assert.Equal(Standby, ClientAddress.Of(Arriving([KeyValuePair.Create(ClientAddress.ForwardedFor, Client.ToString())]), barrier, now));
        var altered = vouched.Select(h => h.Key == ClientAddress.ForwardedFor ? KeyValuePair.Create(h.Key, "192.0.2.8") : h);
        Assert.Equal(Standby, ClientAddress.Of(Arriving(altered), barrier, now));
        Assert.Equal(Standby, ClientAddress.Of(Arriving(vouched), barrier, now.AddMinutes(5)));
        var elsewhere = ClientAddress.Vouch(Client, Login, "n2", other.Services.GetRequiredService<SecurityBarrier>(), now);
        Assert.Equal(Standby, ClientAddress.Of(Arriving(elsewhere), barrier, now));
        var garbled = vouched.Select(h => h.Key == ClientAddress.ForwardedProof ? KeyValuePair.Create(h.Key, "not base64!") : h);
        Assert.Equal(Standby, ClientAddress.Of(Arriving(garbled), barrier, now));

        // A sealed node vouches for nobody.
        barrier.Seal();
        Assert.Empty(ClientAddress.Vouch(Client, Login, "n2", barrier, now));
    }
}
