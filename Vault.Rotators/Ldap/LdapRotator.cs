using System.DirectoryServices.Protocols;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Vault.Rotators.Internal;
using Vault.Rotators.Tls;

namespace Vault.Rotators.Ldap;

/// <summary>Rotates LDAP service-account passwords with the password-modify extended operation (kind <c>ldap</c>).</summary>
/// <remarks>
/// <para>
/// The account is the entry's DN; <see cref="Credential.Username"/> of the admin is the bind DN
/// (simple bind, LDAP v3). <see cref="TargetConnection.Database"/> is an optional base DN: when set,
/// the account must lie under it. Port 0 means 389.
/// </para>
/// <para>
/// The password is set with the RFC 3062 password-modify extended operation, so the directory
/// hashes it by its own policy (OpenLDAP: <c>password-hash</c>) and applies its password policy
/// (ppolicy answers constraintViolation, reported as <see cref="RotatorFailure.PasswordRejected"/>).
/// Option <c>tls</c>: <c>starttls</c> (default; port 0 means 389), <c>ldaps</c> (port 0 means 636),
/// or, only on purpose, <c>none</c> (plain <c>ldap://</c>: the admin's bind password and every new
/// password cross the network in the clear). With TLS the directory's certificate must chain to the
/// target's CA bundle (or the machine's trusted CAs) and name the host, and, when the target is
/// pinned, carry the pinned key; all of it is checked by libldap in the handshake, before the bind.
/// StartTLS is asked for on an anonymous bind's connection (System.DirectoryServices.Protocols opens a
/// Linux connection on the first bind), so the directory must accept an anonymous bind before TLS;
/// one that does not is reached with <c>ldaps</c>.
/// </para>
/// <para>
/// System.DirectoryServices.Protocols (libldap on Linux) only offers blocking binds, so each
/// operation runs on a worker thread bounded by <see cref="TargetConnection.ConnectTimeout"/>;
/// cancelling returns at once and leaves the worker to finish within that bound and close its
/// connection.
/// </para>
/// </remarks>
public sealed class LdapRotator : ICredentialRotator
{
    /// <summary>Default TCP port.</summary>
    public const int DefaultPort = 389;

    /// <summary>Default TCP port with <c>tls=ldaps</c>.</summary>
    public const int DefaultLdapsPort = 636;

    /// <summary>Option: how the connection is secured, <c>starttls</c>, <c>ldaps</c> or <c>none</c> (<see cref="DefaultTls"/>).</summary>
    public const string TlsOption = "tls";

    /// <summary>The <c>tls</c> of a target that does not name one.</summary>
    public const string DefaultTls = "starttls";

    /// <summary>Before the option existed: plain <c>ldap://</c>.</summary>
    public IReadOnlyDictionary<string, string> LegacyTransport { get; } = new Dictionary<string, string> { [TlsOption] = "none" };

    private static readonly string[] KnownOptions = [TlsOption];

    /// <summary>RFC 3062 password modify.</summary>
    public const string PasswordModifyOid = "1.3.6.1.4.1.4203.1.11.1";

    // Not in ResultCode.
    private const int InvalidCredentials = 49;

    // libldap client-side result codes.
    private const int ServerDown = 81;
    private const int Timeout = 85;
    private const int ConnectError = 91;

    public string Kind => "ldap";

    public bool SupportsEphemeralUsers => false;

    public (string Field, string Reason)? Validate(TargetConnection connection, string account)
    {
        if (TargetChecks.Connection(connection, KnownOptions) is { } problem)
        {
            return problem;
        }
        if (ParseTls(connection) is null)
        {
            return ("options", "tls must be one of starttls, ldaps, none");
        }
        if (CertificateCheck.ValidateSettings(connection) is { } settings)
        {
            return settings;
        }
        IReadOnlyList<string>? baseDn = null;
        if (connection.Database.Length > 0 && (baseDn = DistinguishedName.Parse(connection.Database)) is null)
        {
            return ("database", "must be a base DN such as dc=example,dc=org");
        }
        if (DistinguishedName.Parse(account) is not { } dn)
        {
            return ("account", "must be a DN such as uid=svc,ou=people,dc=example,dc=org");
        }
        if (baseDn is not null && !DistinguishedName.IsUnder(dn, baseDn))
        {
            return ("account", "must lie under the base DN");
        }
        return null;
    }

    public TransportSecurity Transport(TargetConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var tls = ParseTls(connection);
        return new TransportSecurity(connection.Option(TlsOption, DefaultTls).ToLowerInvariant(),
            tls is LdapTls.None or null ? "plaintext: the admin's bind password and every new password cross the network in the clear" : null,
            tls is LdapTls.StartTls or LdapTls.Ldaps);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The connection or account does not pass <see cref="Validate"/>.</exception>
    public Task SetPasswordAsync(TargetConnection connection, Credential admin, string account, string newPassword, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(admin);
        ThrowIfInvalid(connection, account);
        const string step = "set password";
        var where = $"{step} on {Describe(connection)} for {account}";
        if (TargetChecks.PasswordProblem(newPassword) is { } problem)
        {
            throw new RotatorException(RotatorFailure.PasswordRejected, $"{where}: {problem}");
        }
        if (DistinguishedName.Parse(admin.Username) is null || TargetChecks.PasswordProblem(admin.Password) is not null)
        {
            // An empty DN or password would make an anonymous bind, which succeeds and changes nothing useful.
            throw new RotatorException(RotatorFailure.AdminRefused, $"{where}: the admin credential needs a bind DN and a non-empty password", effect: RotatorEffect.NotSent);
        }
        return RunAsync(() =>
        {
            LdapConnection ldap;
            try
            {
                ldap = Bind(connection, admin, where, admin: true);
            }
            catch (RotatorException ex)
            {
                // The password-modify request is only sent on a bound connection.
                throw ex.AsNotSent();
            }
            using var ldapScope = ldap;
            var value = PasswordModifyRequestValue(account, newPassword);
            try
            {
                // Client-side bound only: an LDAP client cannot hold a lock across operations
                // (no transactions), so slapd applies or refuses the request on its own, promptly.
                ldap.SendRequest(new ExtendedRequest(PasswordModifyOid, value), connection.StatementTimeout);
            }
            catch (DirectoryOperationException ex)
            {
                // The directory answered with a result code: it did not apply the change.
                throw Failed(where, ex.Response?.ResultCode, ex.Response?.ErrorMessage, ex, RotatorEffect.Refused);
            }
            catch (LdapException ex)
            {
                throw Failed(where, ex, sent: true);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(value);
            }
            return true;
        }, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>Binds as the admin and reads the account's entry (a base search asking for no attributes).</remarks>
    /// <exception cref="ArgumentException">The connection or account does not pass <see cref="Validate"/>.</exception>
    public Task CheckAccountAsync(TargetConnection connection, Credential admin, string account, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(admin);
        ThrowIfInvalid(connection, account);
        var where = $"check account on {Describe(connection)} for {account}";
        if (DistinguishedName.Parse(admin.Username) is null || TargetChecks.PasswordProblem(admin.Password) is not null)
        {
            throw new RotatorException(RotatorFailure.AdminRefused, $"{where}: the admin credential needs a bind DN and a non-empty password", effect: RotatorEffect.NotSent);
        }
        return RunAsync(() =>
        {
            using var ldap = Bind(connection, admin, where, admin: true);
            try
            {
                ldap.SendRequest(new SearchRequest(account, "(objectClass=*)", SearchScope.Base, "1.1"), connection.StatementTimeout);
            }
            catch (DirectoryOperationException ex) when (ex.Response?.ResultCode == ResultCode.NoSuchObject)
            {
                throw new RotatorException(RotatorFailure.AccountNotFound, $"{where}: no such entry (32 NoSuchObject)", ex, RotatorEffect.Refused);
            }
            catch (DirectoryOperationException ex)
            {
                throw Failed(where, ex.Response?.ResultCode, ex.Response?.ErrorMessage, ex, RotatorEffect.Refused);
            }
            catch (LdapException ex)
            {
                throw Failed(where, ex, sent: true);
            }
            return true;
        }, cancellationToken);
    }

    /// <inheritdoc />
    /// <exception cref="RotatorException">The directory answered the bind with something that says nothing about the password.</exception>
    public Task<LoginCheck> VerifyLoginAsync(TargetConnection connection, Credential account, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(account);
        ThrowIfInvalid(connection, account.Username);
        if (TargetChecks.PasswordProblem(account.Password) is { } problem)
        {
            return Task.FromResult(new LoginCheck(LoginOutcome.Refused, problem));
        }
        return RunAsync(() =>
        {
            try
            {
                using var ldap = Bind(connection, account, $"verify login on {Describe(connection)} for {account.Username}", admin: false);
                return LoginCheck.Accepted;
            }
            catch (RotatorException ex) when (ex.Failure == RotatorFailure.Unreachable)
            {
                return new LoginCheck(LoginOutcome.Unreachable, ex.Message);
            }
            catch (RotatorException ex) when (ex.Failure == RotatorFailure.AdminRefused)
            {
                // Bind as the account refused: wrong password, no such entry, or locked by ppolicy.
                return new LoginCheck(LoginOutcome.Refused, ex.Message);
            }
        }, cancellationToken);
    }

    /// <exception cref="NotSupportedException">Always: directories have no notion of short-lived users.</exception>
    public Task CreateEphemeralUserAsync(TargetConnection connection, Credential admin, EphemeralUser user, CancellationToken cancellationToken) =>
        throw new NotSupportedException("the ldap rotator does not create ephemeral users");

    /// <exception cref="NotSupportedException">Always: directories have no notion of short-lived users.</exception>
    public Task RevokeEphemeralUserAsync(TargetConnection connection, Credential admin, string username, CancellationToken cancellationToken) =>
        throw new NotSupportedException("the ldap rotator does not create ephemeral users");

    /// <summary>
    /// <c>PasswdModifyRequestValue ::= SEQUENCE { userIdentity [0] OCTET STRING OPTIONAL,
    /// oldPasswd [1] OCTET STRING OPTIONAL, newPasswd [2] OCTET STRING OPTIONAL }</c> with the
    /// identity and the new password (implicit context tags 0x80 and 0x82).
    /// </summary>
    internal static byte[] PasswordModifyRequestValue(string userDn, string newPassword)
    {
        var dn = Encoding.UTF8.GetBytes(userDn);
        var password = Encoding.UTF8.GetBytes(newPassword);
        try
        {
            return BerConverter.Encode("{toto}", 0x80, dn, 0x82, password);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(password);
        }
    }

    /// <summary>
    /// Opens a connection, secures it as the target says (nothing secret is on the connection until
    /// TLS is up) and binds; a refused bind is <see cref="RotatorFailure.AdminRefused"/> (the caller
    /// reinterprets it for a login check), a refused certificate is <see cref="RotatorFailure.Unreachable"/>,
    /// never sent, naming the host and what was wrong.
    /// </summary>
    private static LdapConnection Bind(TargetConnection connection, Credential credential, string where, bool admin)
    {
        var tls = ParseTls(connection) ?? LdapTls.StartTls;
        var port = Port(connection);
        var identifier = new LdapDirectoryIdentifier(connection.Host, port, fullyQualifiedDnsHostName: false, connectionless: false);
        var ldap = LibLdapOptions.Create(() => new LdapConnection(identifier), connection.ConnectTimeout, connection.CertificatePin, demandCertificate: tls != LdapTls.None);
        ldap.AutoBind = false;
        ldap.Timeout = connection.ConnectTimeout;
        DirectoryInfo? caDirectory = null;
        try
        {
            ldap.SessionOptions.ProtocolVersion = 3;
            ldap.SessionOptions.ReferralChasing = ReferralChasingOptions.None;
            if (tls != LdapTls.None)
            {
                if (OperatingSystem.IsWindows())
                {
                    throw new PlatformNotSupportedException("the ldap rotator's TLS runs on libldap (Linux)");
                }
                if (connection.CaCertificates.Length > 0)
                {
                    // libldap reads trusted CAs from files: a private directory for this connection.
                    caDirectory = Directory.CreateTempSubdirectory("vault-ldap-ca-");
                    File.WriteAllText(Path.Combine(caDirectory.FullName, "ca.pem"), connection.CaCertificates);
                    ldap.SessionOptions.TrustedCertificatesDirectory = caDirectory.FullName;
                }
                ldap.SessionOptions.StartNewTlsSessionContext();
                try
                {
                    if (tls == LdapTls.Ldaps)
                    {
                        ldap.SessionOptions.SecureSocketLayer = true;
                    }
                    // Opens the connection (and, for ldaps, the TLS session) with no name and no
                    // password; StartTLS then secures it before the credential is sent.
                    ldap.AuthType = AuthType.Anonymous;
                    ldap.Bind();
                    if (tls == LdapTls.StartTls)
                    {
                        ldap.SessionOptions.StartTransportLayerSecurity(null);
                    }
                }
                catch (Exception ex) when (ex is LdapException or DirectoryOperationException)
                {
                    var problem = LdapTlsProbe.Explain(connection.Host, port, tls == LdapTls.StartTls, CertificateCheck.For(connection, checkName: true), connection.ConnectTimeout);
                    var message = problem is null
                        ? $"{where}: could not secure the connection to {connection.Host}:{port} with {(tls == LdapTls.Ldaps ? "ldaps" : "StartTLS")}, nothing sent: {ex.Message}"
                        : $"{where}: TLS certificate of {connection.Host} refused, nothing sent: {problem}";
                    throw new RotatorException(RotatorFailure.Unreachable, message, ex, RotatorEffect.NotSent);
                }
            }
            ldap.AuthType = AuthType.Basic;
            ldap.Bind(new NetworkCredential(credential.Username, credential.Password));
            return ldap;
        }
        catch (LdapException ex)
        {
            ldap.Dispose();
            if (ex.ErrorCode == InvalidCredentials)
            {
                var who = admin ? "admin bind" : "bind";
                throw new RotatorException(RotatorFailure.AdminRefused, $"{where}: {who} refused, invalid credentials (49)", ex);
            }
            throw Failed(where, ex, sent: false);
        }
        catch (DirectoryOperationException ex)
        {
            // The directory answered the bind with a result (e.g. 13, confidentiality required).
            ldap.Dispose();
            if (ex.Response is null)
            {
                // libldap's bind reports no result code here, only the directory's text.
                throw new RotatorException(RotatorFailure.AdminRefused, $"{where}: the directory refused the bind: {ex.Message}", ex, RotatorEffect.NotSent);
            }
            throw Failed(where, ex.Response.ResultCode, ex.Response.ErrorMessage, ex, RotatorEffect.NotSent);
        }
        catch
        {
            ldap.Dispose();
            throw;
        }
        finally
        {
            caDirectory?.Delete(recursive: true);
        }
    }

    private enum LdapTls
    {
        StartTls,
        Ldaps,
        None,
    }

    private static LdapTls? ParseTls(TargetConnection connection) => connection.Option(TlsOption, DefaultTls).ToLowerInvariant() switch
    {
        "starttls" => LdapTls.StartTls,
        "ldaps" => LdapTls.Ldaps,
        "none" => LdapTls.None,
        _ => null,
    };

    private static int Port(TargetConnection connection) =>
        connection.Port != 0 ? connection.Port : ParseTls(connection) == LdapTls.Ldaps ? DefaultLdapsPort : DefaultPort;

    /// <param name="sent">Whether a request that changes something had been sent when it failed.</param>
    private static RotatorException Failed(string where, LdapException ex, bool sent) => ex.ErrorCode switch
    {
        // Client-side codes: the connection broke or the wait ended without an answer.
        ServerDown or ConnectError or Timeout =>
            new RotatorException(RotatorFailure.Unreachable, $"{where}: directory unreachable: {ex.Message} ({ex.ErrorCode})", ex, sent ? RotatorEffect.Unknown : RotatorEffect.NotSent),
        (int)ResultCode.Busy or (int)ResultCode.Unavailable =>
            new RotatorException(RotatorFailure.Unreachable, $"{where}: directory unreachable: {ex.Message} ({ex.ErrorCode})", ex, sent ? RotatorEffect.Refused : RotatorEffect.NotSent),
        _ => Failed(where, (ResultCode)ex.ErrorCode, ex.ServerErrorMessage, ex, sent ? RotatorEffect.Refused : RotatorEffect.NotSent),
    };

    private static RotatorException Failed(string where, ResultCode? code, string? serverMessage, Exception ex, RotatorEffect effect)
    {
        var failure = code switch
        {
            ResultCode.InsufficientAccessRights or (ResultCode)InvalidCredentials or ResultCode.StrongAuthRequired or ResultCode.ConfidentialityRequired => RotatorFailure.AdminRefused,
            ResultCode.NoSuchObject => RotatorFailure.AccountNotFound,
            ResultCode.ConstraintViolation => RotatorFailure.PasswordRejected,
            ResultCode.Busy or ResultCode.Unavailable => RotatorFailure.Unreachable,
            _ => RotatorFailure.Other,
        };
        var detail = string.IsNullOrWhiteSpace(serverMessage) ? "" : $": {serverMessage.Trim()}";
        var number = code switch
        {
            null => "",
            { } c when Enum.IsDefined(c) => $" ({(int)c} {c})",
            { } c => $" ({(int)c})",
        };
        return new RotatorException(failure, $"{where}: the directory answered{number}{detail}", ex, effect);
    }

    /// <summary>Runs blocking libldap work on a worker; cancellation abandons the wait, the connection timeout bounds the work.</summary>
    private static async Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var task = Task.Run(work, CancellationToken.None);
        try
        {
            return await task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && !task.IsCompleted)
        {
            // Observe the abandoned worker's outcome so it does not surface as an unobserved exception.
            _ = task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            throw;
        }
    }

    private static Task RunAsync(Func<bool> work, CancellationToken cancellationToken) => RunAsync<bool>(work, cancellationToken);

    private static string Describe(TargetConnection connection) =>
        $"ldap {connection.Host}:{Port(connection)}";

    private void ThrowIfInvalid(TargetConnection connection, string account)
    {
        if (Validate(connection, account) is { } problem)
        {
            throw new ArgumentException($"invalid ldap target: {problem.Field} {problem.Reason}");
        }
    }
}
