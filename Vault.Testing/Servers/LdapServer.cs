using System.DirectoryServices.Protocols;
using System.Globalization;
using System.Net;

namespace Vault.Testing.Servers;

/// <summary>
/// A private OpenLDAP slapd on <c>ldap://127.0.0.1</c> and a free port, in its own temp
/// directory: an mdb database under <see cref="BaseDn"/> with <see cref="PeopleDn"/>, a root DN
/// that may do anything (including the password-modify extended operation on any entry), and
/// users who may bind and change their own password. Use it as a collection fixture
/// (<c>[Collection("ldap")]</c>) or per test with <c>await using var ldap = await LdapServer.StartAsync();</c>.
/// </summary>
/// <remarks>As root slapd runs as <c>openldap</c>. It logs connections and operations (<c>-d stats</c>), never attribute values.</remarks>
public sealed class LdapServer : ServerFixture
{
    private const string Daemon = "/usr/sbin/slapd";
    private const string SlapAdd = "/usr/sbin/slapadd";
    private const string InstallCommand = "apt-get install -y slapd ldap-utils";
    private const string LogFileName = "slapd.log";
    private const int InvalidCredentials = 49;

    /// <summary><c>ldap://127.0.0.1:{Port}/</c></summary>
    public string Uri => $"ldap://{Host}:{Port.ToString(CultureInfo.InvariantCulture)}/";

    public string BaseDn => "dc=vault,dc=test";

    /// <summary>Where <see cref="CreateUserAsync"/> puts users: <c>ou=people,</c><see cref="BaseDn"/>.</summary>
    public string PeopleDn => $"ou=people,{BaseDn}";

    /// <summary>The root DN: not subject to access control.</summary>
    public string AdminDn => $"cn=admin,{BaseDn}";

    public string AdminPassword { get; } = ServerHost.NewPassword();

    /// <summary>Where <see cref="CreateGroupAsync"/> puts groups: <c>ou=groups,</c><see cref="BaseDn"/>.</summary>
    public string GroupsDn => $"ou=groups,{BaseDn}";

    /// <summary>The certificate slapd offers on StartTLS, or null for a server without TLS.</summary>
    private PemCertificate? _tls;

    /// <summary>Starts a new private server; dispose it to stop it and delete its files.</summary>
    /// <exception cref="InvalidOperationException">slapd is not installed (the message has the install command), or it failed to start (the message has its log).</exception>
    public static Task<LdapServer> StartAsync(CancellationToken ct = default) => StartNewAsync(new LdapServer(), ct);

    /// <summary>Starts a new private server that offers StartTLS with <paramref name="certificate"/> (on the same ldap:// port).</summary>
    public static Task<LdapServer> StartWithTlsAsync(PemCertificate certificate, CancellationToken ct = default) =>
        StartNewAsync(new LdapServer { _tls = certificate }, ct);

    /// <summary>
    /// Starts a new private server that refuses simple binds without TLS (<c>security
    /// simple_bind=128</c>: a bind on plain <c>ldap://</c> gets confidentialityRequired, 13), offers
    /// StartTLS on <see cref="ServerFixture.Port"/> and LDAPS on <see cref="LdapsPort"/>, with
    /// <paramref name="certificate"/>; its log shows each TLS session (<c>TLS established</c>). The
    /// fixture's own connections use StartTLS and trust <paramref name="caPem"/>.
    /// </summary>
    public static Task<LdapServer> StartTlsOnlyAsync(PemCertificate certificate, string caPem, CancellationToken ct = default) =>
        StartNewAsync(new LdapServer { _tls = certificate, _tlsOnlyCa = caPem, LdapsPort = ServerHost.FreePort() }, ct);

    /// <summary>The ldaps:// port of a server started with <see cref="StartTlsOnlyAsync"/>; 0 otherwise.</summary>
    public int LdapsPort { get; private init; }

    /// <summary>The CA the fixture's own connections trust, for a server that refuses binds without TLS.</summary>
    private string? _tlsOnlyCa;

    /// <summary>Adds <c>cn=&lt;name&gt;,</c><see cref="GroupsDn"/> (a groupOfNames whose members are <paramref name="memberDns"/>) and returns its DN.</summary>
    public async Task<string> CreateGroupAsync(string name, params string[] memberDns)
    {
        var dn = $"cn={name},{GroupsDn}";
        await SendAsAdminAsync(new AddRequest(
            dn,
            new DirectoryAttribute("objectClass", "groupOfNames"),
            new DirectoryAttribute("cn", name),
            new DirectoryAttribute("member", memberDns.Cast<object>().ToArray())));
        return dn;
    }

    /// <summary>
    /// Adds <c>uid=&lt;unique&gt;,</c><see cref="PeopleDn"/> (an inetOrgPerson whose
    /// <c>userPassword</c> is <paramref name="password"/>) and returns its DN.
    /// </summary>
    public async Task<string> CreateUserAsync(string password, string prefix = "svc")
    {
        var uid = ServerHost.UniqueName(prefix);
        var dn = $"uid={uid},{PeopleDn}";
        await SendAsAdminAsync(new AddRequest(
            dn,
            new DirectoryAttribute("objectClass", "inetOrgPerson"),
            new DirectoryAttribute("uid", uid),
            new DirectoryAttribute("cn", uid),
            new DirectoryAttribute("sn", uid),
            new DirectoryAttribute("userPassword", password)));
        return dn;
    }

    /// <summary>Sends <paramref name="request"/> on a fresh connection bound as <see cref="AdminDn"/>.</summary>
    /// <exception cref="DirectoryOperationException">The server answered with an error.</exception>
    public Task<DirectoryResponse> SendAsAdminAsync(DirectoryRequest request) =>
        Task.Run(() =>
        {
            using var connection = Connect(AdminDn, AdminPassword);
            return connection.SendRequest(request);
        });

    /// <summary>Whether a simple bind as <paramref name="dn"/> succeeds on a fresh connection.</summary>
    /// <returns><c>false</c> when the server answers invalidCredentials (49).</returns>
    /// <exception cref="LdapException">Any other failure, such as the server being down.</exception>
    public Task<bool> CanBindAsync(string dn, string password) =>
        Task.Run(() =>
        {
            try
            {
                using var connection = Connect(dn, password);
                return true;
            }
            catch (LdapException ex) when (ex.ErrorCode == InvalidCredentials)
            {
                return false;
            }
        });

    private protected override async Task InitializeAsync(CancellationToken ct)
    {
        ServerHost.RequireBinaries("OpenLDAP slapd", InstallCommand, Daemon, SlapAdd);
        var user = ServerHost.ServiceUser("openldap");
        Instance = await ServerInstance.CreateAsync(
            new ServerSpec("ldap", "OpenLDAP slapd", user, LogFileName, Signal.Term, Signal.Kill, CommandLine, ProbeAsync),
            ct);
        var directory = Instance.Directory;
        var database = Path.Combine(directory, "db");
        await ServerHost.RunAsync(user, ["mkdir", database], ct, directory);
        // The root DN bypasses access control, so it can set any password (password modify
        // included). Users may bind, and write their own password; nobody else reads it.
        var tls = "";
        {
            // StartTLS offered on the ldap:// port, by default with the run's certificate.
            var certificate = _tls ?? TestCertificates.RunServerCertificate;
            // Readable by slapd (it runs as openldap, in a directory it owns); a test's own key.
            await File.WriteAllTextAsync(Path.Combine(directory, "server.pem"), certificate.CertificatePem, ct);
            await File.WriteAllTextAsync(Path.Combine(directory, "server.key"), certificate.KeyPem, ct);
            tls = $"""
                TLSCertificateFile {Path.Combine(directory, "server.pem")}
                TLSCertificateKeyFile {Path.Combine(directory, "server.key")}

                """;
            if (_tlsOnlyCa is not null)
            {
                tls += "security simple_bind=128\n";
            }
        }
        await File.WriteAllTextAsync(
            ConfigPath(directory),
            tls + $"""
            include /etc/ldap/schema/core.schema
            include /etc/ldap/schema/cosine.schema
            include /etc/ldap/schema/inetorgperson.schema
            modulepath /usr/lib/ldap
            moduleload back_mdb
            database mdb
            suffix "{BaseDn}"
            rootdn "{AdminDn}"
            rootpw {AdminPassword}
            directory {database}
            dbnosync
            access to attrs=userPassword
              by self write
              by anonymous auth
              by * none
            access to *
              by * read

            """,
            ct);
        var baseLdif = Path.Combine(directory, "base.ldif");
        await File.WriteAllTextAsync(
            baseLdif,
            $"""
            dn: {BaseDn}
            objectClass: dcObject
            objectClass: organization
            dc: vault
            o: Vault tests

            dn: {PeopleDn}
            objectClass: organizationalUnit
            ou: people

            dn: {GroupsDn}
            objectClass: organizationalUnit
            ou: groups

            """,
            ct);
        await ServerHost.RunAsync(user, [SlapAdd, "-f", ConfigPath(directory), "-l", baseLdif], ct, directory);
        await Instance.StartAsync(ct);
    }

    private static string ConfigPath(string directory) => Path.Combine(directory, "slapd.conf");

    // -d keeps slapd in the foreground (it would fork otherwise), and "stats" is the level that
    // logs connections and operations.
    private IReadOnlyList<string> CommandLine(string directory, int port) =>
    [
        Daemon, "-f", ConfigPath(directory),
        "-h", $"ldap://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/" + (LdapsPort == 0 ? "" : $" ldaps://127.0.0.1:{LdapsPort.ToString(CultureInfo.InvariantCulture)}/"),
        "-d", "stats",
    ];

    private Task ProbeAsync(int port, CancellationToken ct) =>
        Task.Run(
            () =>
            {
                using var connection = Connect(AdminDn, AdminPassword);
            },
            ct);

    /// <summary>A connection bound as <paramref name="dn"/> (over StartTLS for a server that refuses binds without it).</summary>
    private LdapConnection Connect(string dn, string password)
    {
        var connection = new LdapConnection(new LdapDirectoryIdentifier(Host, Port), new NetworkCredential(dn, password), AuthType.Basic)
        {
            Timeout = TimeSpan.FromSeconds(5),
        };
        try
        {
            // libldap speaks LDAPv2 unless told otherwise, and slapd refuses v2 binds.
            connection.SessionOptions.ProtocolVersion = 3;
            if (_tlsOnlyCa is { } ca && !OperatingSystem.IsWindows())
            {
                var caDirectory = Path.Combine(Instance.Directory, "client-ca");
                if (!System.IO.Directory.Exists(caDirectory))
                {
                    System.IO.Directory.CreateDirectory(caDirectory);
                    File.WriteAllText(Path.Combine(caDirectory, "ca.pem"), ca);
                }
                connection.SessionOptions.TrustedCertificatesDirectory = caDirectory;
                connection.SessionOptions.StartNewTlsSessionContext();
                // On Linux the first bind opens the connection, which StartTLS needs.
                connection.Bind(new NetworkCredential("", ""));
                connection.SessionOptions.StartTransportLayerSecurity(null);
            }
            connection.Bind(new NetworkCredential(dn, password));
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }
}
