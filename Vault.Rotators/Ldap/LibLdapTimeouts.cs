using System.DirectoryServices.Protocols;
using System.Runtime.InteropServices;

namespace Vault.Rotators.Ldap;

/// <summary>
/// Bounds libldap's synchronous calls, which System.DirectoryServices.Protocols cannot do on Linux.
/// </summary>
/// <remarks>
/// <para>
/// On Linux <see cref="LdapConnection.Bind()"/> calls <c>ldap_sasl_bind_s</c>, which waits for the
/// server's answer for as long as libldap's <c>LDAP_OPT_TIMEOUT</c> allows: forever by default.
/// <see cref="LdapConnection.Timeout"/> does not reach that option, so a server that accepts the TCP
/// connection and never answers would hold the bind, and its thread, indefinitely.
/// </para>
/// <para>
/// libldap copies its global options into each handle when the handle is created, and the .NET
/// wrapper creates the handle in the <see cref="LdapConnection"/> constructor. So the global
/// <c>LDAP_OPT_TIMEOUT</c> and <c>LDAP_OPT_NETWORK_TIMEOUT</c> are set, under a lock, right before
/// each connection is constructed; the handle keeps the values whatever is set later. The library is
/// found under the names the .NET wrapper tries, in its order, so both use the same copy. Where it
/// cannot be found (Windows, where the wrapper honours <see cref="LdapConnection.Timeout"/> itself),
/// connections are created as they are.
/// </para>
/// </remarks>
internal static class LibLdapTimeouts
{
    private const int LdapOptTimeout = 0x5002;
    private const int LdapOptNetworkTimeout = 0x5005;
    private const int LdapOptSuccess = 0;

    // The names System.DirectoryServices.Protocols resolves libldap by, in its order.
    private static readonly string[] LibraryNames = ["libldap.so.2", "libldap-2.6.so.0", "libldap-2.5.so.0", "libldap-2.4.so.2"];

    private static readonly Lock Gate = new();
    private static readonly SetTimeValOption? SetOption = Resolve();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int SetTimeValOption(nint ld, int option, ref TimeVal value);

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeVal
    {
        public nint Seconds;
        public nint Microseconds;
    }

    /// <summary>Whether the timeouts can be applied (libldap found).</summary>
    public static bool Available => SetOption is not null;

    /// <summary>Constructs a connection whose handle carries <paramref name="timeout"/> for connecting and for each synchronous call.</summary>
    public static LdapConnection Create(Func<LdapConnection> create, TimeSpan timeout)
    {
        if (SetOption is null)
        {
            return create();
        }
        var value = new TimeVal
        {
            Seconds = (nint)Math.Max(1, Math.Ceiling(timeout.TotalSeconds)),
            Microseconds = 0,
        };
        lock (Gate)
        {
            if (SetOption(0, LdapOptTimeout, ref value) != LdapOptSuccess || SetOption(0, LdapOptNetworkTimeout, ref value) != LdapOptSuccess)
            {
                throw new InvalidOperationException("libldap refused the timeout options");
            }
            return create();
        }
    }

    private static SetTimeValOption? Resolve()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return null;
        }
        foreach (var name in LibraryNames)
        {
            if (NativeLibrary.TryLoad(name, out var library) && NativeLibrary.TryGetExport(library, "ldap_set_option", out var function))
            {
                return Marshal.GetDelegateForFunctionPointer<SetTimeValOption>(function);
            }
        }
        return null;
    }
}
