using System.DirectoryServices.Protocols;
using System.Net;

namespace Vault.Server.Identity;

/// <summary>How to reach the directory people log in against.</summary>
/// <param name="Url"><c>ldap://host:port</c> (with <paramref name="StartTls"/>) or <c>ldaps://host:port</c>.</param>
/// <param name="CaCertificatePem">The CA that signed the directory's certificate; its certificate is checked against it (and its name against the host).</param>
public sealed record LdapEndpoint(string Url, bool StartTls, string CaCertificatePem);

/// <summary>
/// One person's bind against the directory, over TLS that checks the directory's certificate: the
/// CA given (written to a private directory the TLS library reads, then a fresh TLS context), and
/// the host name, as libldap checks by default. Plaintext is refused: a password sent in the clear
/// is a leak. With StartTLS the directory must accept an anonymous bind before it (System.DirectoryServices.Protocols
/// opens a Linux connection on the first bind); a directory that does not is reached with ldaps://.
/// </summary>
internal static class LdapDirectory
{
    private const int InvalidCredentials = 49;

    /// <summary>Binds as <paramref name="dn"/>; on success, returns the values of <paramref name="groupAttribute"/> of the entries under <paramref name="groupBaseDn"/> that list the person as a member.</summary>
    /// <returns>Null when the directory refused the password.</returns>
    /// <exception cref="UnavailableException">The directory cannot be reached, or its certificate is not trusted.</exception>
    public static IReadOnlyList<string>? BindAndReadGroups(LdapEndpoint endpoint, string dn, string password, string groupBaseDn, string groupAttribute, TimeSpan timeout)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("LDAP login runs on Linux (libldap)");
        }
        var uri = new Uri(endpoint.Url);
        var secure = uri.Scheme == "ldaps";
        var caDirectory = Directory.CreateTempSubdirectory("vault-ldap-ca-");
        try
        {
            File.WriteAllText(Path.Combine(caDirectory.FullName, "ca.pem"), endpoint.CaCertificatePem);
            // No credential on the connection until TLS is up: nothing secret can leave in the clear.
            // Through the rotators' libldap options: the bind is bounded by the timeout, the certificate
            // demanded, and no other connection's global options are half-set while the handle is made.
            using var connection = Vault.Rotators.Ldap.LibLdapOptions.Create(
                () => new LdapConnection(new LdapDirectoryIdentifier(uri.Host, uri.Port > 0 ? uri.Port : secure ? 636 : 389)),
                timeout, demandCertificate: true);
            connection.AuthType = AuthType.Anonymous;
            connection.Timeout = timeout;
            connection.SessionOptions.ProtocolVersion = 3;
            connection.SessionOptions.TrustedCertificatesDirectory = caDirectory.FullName;
            connection.SessionOptions.StartNewTlsSessionContext();
            try
            {
                if (secure)
                {
                    connection.SessionOptions.SecureSocketLayer = true;
                }
                else
                {
                    // On Linux the connection is opened by the first bind, and StartTLS needs it
                    // open: an anonymous bind (no name, no password) opens it first.
                    connection.Bind();
                    connection.SessionOptions.StartTransportLayerSecurity(null);
                }
                connection.AuthType = AuthType.Basic;
                connection.Bind(new NetworkCredential(dn, password));
            }
            catch (LdapException ex) when (ex.ErrorCode == InvalidCredentials)
            {
                return null;
            }
            catch (Exception ex) when (ex is LdapException or DirectoryOperationException)
            {
                throw new UnavailableException($"ldap login: cannot reach the directory over verified TLS at {uri.Host}:{uri.Port}: {ex.Message}");
            }
            var filter = $"(member={Escape(dn)})";
            var response = (SearchResponse)connection.SendRequest(new SearchRequest(groupBaseDn, filter, SearchScope.Subtree, groupAttribute));
            return response.Entries.Cast<SearchResultEntry>()
                .SelectMany(e => e.Attributes[groupAttribute]?.GetValues(typeof(string)).Cast<string>() ?? [])
                .Distinct(StringComparer.Ordinal)
                .ToList();
        }
        finally
        {
            caDirectory.Delete(recursive: true);
        }
    }

    /// <summary>RFC 4515 escaping of a value in a search filter.</summary>
    internal static string Escape(string value) =>
        string.Concat(value.Select(c => c switch
        {
            '*' => "\\2a",
            '(' => "\\28",
            ')' => "\\29",
            '\\' => "\\5c",
            '\0' => "\\00",
            _ => c.ToString(),
        }));
}
