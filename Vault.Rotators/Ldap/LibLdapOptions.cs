using System.DirectoryServices.Protocols;
using System.Runtime.InteropServices;

namespace Vault.Rotators.Ldap;

/// <summary>
/// Sets the libldap options System.DirectoryServices.Protocols does not expose on Linux: timeouts for
/// synchronous calls, restarting waits interrupted by a signal, the demand for a valid server
/// certificate and the key pin. Every LDAP connection of the process should be made through
/// <see cref="Create"/>: the options are set globally, under one lock, around the handle's creation.
/// </summary>
/// <remarks>
/// <para>
/// On Linux <see cref="LdapConnection.Bind()"/> calls <c>ldap_sasl_bind_s</c>, which waits for the
/// server's answer for as long as libldap's <c>LDAP_OPT_TIMEOUT</c> allows: forever by default.
/// <see cref="LdapConnection.Timeout"/> does not reach that option, so a server that accepts the TCP
/// connection and never answers would hold the bind, and its thread, indefinitely.
/// </para>
/// <para>
/// A wait for the server's answer that a signal interrupts (EINTR; e.g. SIGCHLD when the process
/// runs child processes) fails with "server down" (81) unless <c>LDAP_OPT_RESTART</c> is on, which
/// it is not by default.
/// </para>
/// <para>
/// libldap copies its global options into each handle when the handle is created, and the .NET
/// wrapper creates the handle in the <see cref="LdapConnection"/> constructor. So the global
/// <c>LDAP_OPT_TIMEOUT</c>, <c>LDAP_OPT_NETWORK_TIMEOUT</c> and <c>LDAP_OPT_RESTART</c> are set,
/// under a lock, right before each connection is constructed; the handle keeps the values whatever
/// is set later. The library is
/// found under the names the .NET wrapper tries, in its order, so both use the same copy. Where it
/// cannot be found (Windows, where the wrapper honours <see cref="LdapConnection.Timeout"/> itself),
/// connections are created as they are.
/// </para>
/// </remarks>
public static class LibLdapOptions
{
    private const int LdapOptRestart = 0x09;
    private const int LdapOptTimeout = 0x5002;
    private const int LdapOptNetworkTimeout = 0x5005;
    private const int LdapOptSuccess = 0;
    private const int LdapOptTlsRequireCert = 0x6006;
    private const int LdapOptTlsPeerKeyHash = 0x6019;
    private const int LdapOptTlsDemand = 2;

    // The names System.DirectoryServices.Protocols resolves libldap by, in its order.
    private static readonly string[] LibraryNames = ["libldap.so.2", "libldap-2.6.so.0", "libldap-2.5.so.0", "libldap-2.4.so.2"];

    private static readonly Lock Gate = new();
    private static readonly nint SetOptionFunction = Resolve();
    private static readonly SetTimeValOption? SetTimeVal = SetOptionFunction == 0 ? null : Marshal.GetDelegateForFunctionPointer<SetTimeValOption>(SetOptionFunction);
    private static readonly SetPointerOption? SetPointer = SetOptionFunction == 0 ? null : Marshal.GetDelegateForFunctionPointer<SetPointerOption>(SetOptionFunction);
    private static readonly SetIntOption? SetInt = SetOptionFunction == 0 ? null : Marshal.GetDelegateForFunctionPointer<SetIntOption>(SetOptionFunction);

    // Any non-null pointer means LDAP_OPT_ON for libldap's boolean options.
    private static readonly nint On = Marshal.AllocHGlobal(sizeof(int));

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int SetTimeValOption(nint ld, int option, ref TimeVal value);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int SetPointerOption(nint ld, int option, nint value);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int SetIntOption(nint ld, int option, ref int value);

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeVal
    {
        public nint Seconds;
        public nint Microseconds;
    }

    /// <summary>Whether the options can be applied (libldap found).</summary>
    public static bool Available => SetOptionFunction != 0;

    /// <summary>
    /// Constructs a connection whose handle carries <paramref name="timeout"/> for connecting and for
    /// each synchronous call, restarts interrupted waits, demands a valid server certificate on TLS
    /// (whatever <c>ldap.conf</c> says), and, with <paramref name="keyPin"/>, accepts only a server
    /// key with that hash (libldap's <c>LDAP_OPT_X_TLS_PEERKEY_HASH</c>, <c>sha256:&lt;base64&gt;</c>,
    /// checked in the handshake, before anything is sent).
    /// </summary>
    /// <param name="create">Constructs the connection (the handle is made in the constructor).</param>
    /// <param name="timeout">For connecting and for each synchronous call.</param>
    /// <param name="keyPin">Optional <c>sha256:&lt;base64&gt;</c> pin of the server's key.</param>
    /// <param name="demandCertificate">The connection will use TLS: refuse to make it where the certificate demand cannot be set (libldap not found), rather than leave it to <c>ldap.conf</c>.</param>
    /// <exception cref="PlatformNotSupportedException">A pin or a certificate demand is asked for and libldap was not found.</exception>
    public static LdapConnection Create(Func<LdapConnection> create, TimeSpan timeout, string keyPin = "", bool demandCertificate = false)
    {
        ArgumentNullException.ThrowIfNull(create);
        ArgumentNullException.ThrowIfNull(keyPin);
        if (SetTimeVal is null || SetPointer is null)
        {
            return keyPin.Length == 0 && !demandCertificate ? create() : throw new PlatformNotSupportedException("certificate checks on LDAP connections need libldap, which was not found");
        }
        var value = new TimeVal
        {
            Seconds = (nint)Math.Max(1, Math.Ceiling(timeout.TotalSeconds)),
            Microseconds = 0,
        };
        var demand = LdapOptTlsDemand;
        lock (Gate)
        {
            if (SetTimeVal(0, LdapOptTimeout, ref value) != LdapOptSuccess
                || SetTimeVal(0, LdapOptNetworkTimeout, ref value) != LdapOptSuccess
                || SetPointer(0, LdapOptRestart, On) != LdapOptSuccess
                || SetInt!(0, LdapOptTlsRequireCert, ref demand) != LdapOptSuccess)
            {
                throw new InvalidOperationException("libldap refused the connection options");
            }
            if (keyPin.Length == 0)
            {
                return create();
            }
            // A global option copied into the handle as it is created, then cleared again under
            // the same lock: no other connection made here carries it.
            var pin = Marshal.StringToCoTaskMemUTF8(keyPin);
            try
            {
                if (SetPointer(0, LdapOptTlsPeerKeyHash, pin) != LdapOptSuccess)
                {
                    throw new InvalidOperationException("libldap refused the certificate key pin");
                }
                return create();
            }
            finally
            {
                SetPointer(0, LdapOptTlsPeerKeyHash, 0);
                Marshal.FreeCoTaskMem(pin);
            }
        }
    }

    private static nint Resolve()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return 0;
        }
        foreach (var name in LibraryNames)
        {
            if (NativeLibrary.TryLoad(name, out var library) && NativeLibrary.TryGetExport(library, "ldap_set_option", out var function))
            {
                return function;
            }
        }
        return 0;
    }
}
