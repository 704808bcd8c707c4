using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Vault.Server.Crypto;

namespace Vault.Server.Cluster;

/// <summary>
/// The address a call came from, as the rules that depend on it (an AppRole secret id bound to
/// CIDRs) must see it. A call a standby forwarded arrives from the standby; the standby says whose
/// it was (<c>vault-forwarded-for</c>) with a proof only a node holding the keyring can make: an
/// HMAC (keyed from the keyring, purpose <see cref="Purpose"/>) over the address, the time, the
/// method and the forwarding node, accepted within <see cref="Window"/> and only on a call that
/// says it was forwarded. Without a valid proof the connection's own address counts, so a client
/// cannot claim another address by sending the headers itself. (Between nodes without TLS a proof
/// can be replayed for the same method within the window — but there the call it came with, its
/// credentials included, crossed the network in the clear already.)
/// </summary>
public static class ClientAddress
{
    public const string ForwardedFor = "vault-forwarded-for";
    public const string ForwardedAt = "vault-forwarded-at";
    public const string ForwardedProof = "vault-forwarded-proof";
    private const string Purpose = "cluster-forwarded-for";
    private const string ForwardedBy = "vault-forwarded-by";
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(30);

    /// <summary>The headers a forwarding node adds, or none while it is sealed (then the active node sees the standby's address).</summary>
    public static IEnumerable<KeyValuePair<string, string>> Vouch(IPAddress? client, string method, string node, SecurityBarrier barrier, DateTimeOffset now)
    {
        if (client is null || barrier.IsSealed)
        {
            return [];
        }
        var at = now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        try
        {
            return
            [
                KeyValuePair.Create(ForwardedFor, client.ToString()),
                KeyValuePair.Create(ForwardedAt, at),
                KeyValuePair.Create(ForwardedProof, Convert.ToBase64String(barrier.Hmac(Purpose, Message(client.ToString(), at, method, node)))),
            ];
        }
        catch (VaultSealedException)
        {
            return [];
        }
    }

    /// <summary>The caller's address: the one a node vouched for, or the connection's.</summary>
    public static IPAddress? Of(HttpContext context, SecurityBarrier barrier, DateTimeOffset now)
    {
        var own = context.Connection.RemoteIpAddress;
        var headers = context.Request.Headers;
        if (headers[ForwardedFor].ToString() is not { Length: > 0 } claimed
            || !IPAddress.TryParse(claimed, out var address)
            || !long.TryParse(headers[ForwardedAt], NumberStyles.None, CultureInfo.InvariantCulture, out var at)
            || (now - DateTimeOffset.FromUnixTimeSeconds(at)).Duration() > Window
            || headers[ForwardedBy].ToString() is not { Length: > 0 } node)
        {
            return own;
        }
        byte[] proof;
        try
        {
            proof = Convert.FromBase64String(headers[ForwardedProof].ToString());
        }
        catch (FormatException)
        {
            return own;
        }
        try
        {
            var expected = barrier.Hmac(Purpose, Message(claimed, headers[ForwardedAt].ToString(), context.Request.Path.Value ?? "", node));
            return CryptographicOperations.FixedTimeEquals(expected, proof) ? address : own;
        }
        catch (VaultSealedException)
        {
            return own;
        }
    }

    private static byte[] Message(string address, string at, string method, string node) => Encoding.UTF8.GetBytes($"{address}\n{at}\n{method}\n{node}");
}
