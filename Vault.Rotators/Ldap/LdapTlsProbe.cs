using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using Vault.Rotators.Tls;

namespace Vault.Rotators.Ldap;

/// <summary>
/// Says what was wrong with a directory's certificate after libldap refused it: libldap reports only
/// "connect error", so a second, separate connection repeats the handshake (after StartTLS when the
/// target uses it) with the vault's own <see cref="CertificateCheck"/>, and sends nothing else. It
/// only explains a refusal; the refusal itself is libldap's, on the connection that would have carried
/// the password.
/// </summary>
internal static class LdapTlsProbe
{
    private const string StartTlsOid = "1.3.6.1.4.1.1466.20037";

    /// <summary>What is wrong with the certificate the directory presents, or null when it passes (or the probe could not tell).</summary>
    public static string? Explain(string host, int port, bool startTls, CertificateCheck check, TimeSpan timeout)
    {
        try
        {
            using var tcp = new TcpClient();
            if (!tcp.ConnectAsync(host, port).Wait(timeout))
            {
                return null;
            }
            var stream = tcp.GetStream();
            stream.ReadTimeout = stream.WriteTimeout = (int)Math.Min(int.MaxValue, timeout.TotalMilliseconds);
            if (startTls && !StartTls(stream))
            {
                return null;
            }
            using var tls = new SslStream(stream, leaveInnerStreamOpen: true, check.Validate);
            tls.AuthenticateAsClient(new SslClientAuthenticationOptions { TargetHost = host });
            return null;
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or SocketException or AggregateException or TimeoutException)
        {
            return check.Problem;
        }
    }

    /// <summary>Sends the StartTLS extended request (message 1) and reads whether the directory agreed.</summary>
    private static bool StartTls(NetworkStream stream)
    {
        // LDAPMessage { messageID 1, extendedReq [APPLICATION 23] { requestName [0] "1.3.6.1.4.1.1466.20037" } }
        var oid = Encoding.ASCII.GetBytes(StartTlsOid);
        byte[] request = [0x30, (byte)(oid.Length + 7), 0x02, 0x01, 0x01, 0x77, (byte)(oid.Length + 2), 0x80, (byte)oid.Length, .. oid];
        stream.Write(request);
        var header = new byte[2];
        stream.ReadExactly(header);
        if (header[0] != 0x30)
        {
            return false;
        }
        var length = header[1] & 0x7f;
        if ((header[1] & 0x80) != 0)
        {
            var octets = new byte[length];
            stream.ReadExactly(octets);
            length = octets.Aggregate(0, (value, b) => (value << 8) | b);
        }
        if (length is <= 0 or > 4096)
        {
            return false;
        }
        var body = new byte[length];
        stream.ReadExactly(body);
        // ... extendedResp [APPLICATION 24] { resultCode ENUMERATED, ... }: success is 0a 01 00.
        var response = Array.IndexOf(body, (byte)0x78);
        var code = response < 0 ? -1 : body.AsSpan(response).IndexOf([(byte)0x0a, (byte)0x01]);
        return code >= 0 && response + code + 2 < body.Length && body[response + code + 2] == 0;
    }
}
