using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Vault.Testing.Servers;

/// <summary>
/// What the server fixtures need from the machine: the binaries, a service user when we are root,
/// free loopback ports, and short-lived helper commands (initdb, slapadd, chown, …).
/// </summary>
internal static class ServerHost
{
    private const string PasswordAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

    /// <summary>PostgreSQL, MariaDB and slapd refuse (or should not) run as root: as root we drop to their own users.</summary>
    public static bool IsRoot => Environment.IsPrivilegedProcess;

    /// <summary>The account a server runs as: its package's user when we are root, else whoever we are (<c>null</c>).</summary>
    public static string? ServiceUser(string packageUser) => IsRoot ? packageUser : null;

    /// <summary>A missing server is a failed test with the command that fixes it, never a skip.</summary>
    public static void RequireBinaries(string product, string installCommand, params string[] paths)
    {
        var missing = paths.Where(p => !File.Exists(p)).ToList();
        if (IsRoot && !File.Exists("/usr/bin/setpriv"))
        {
            missing.Add("/usr/bin/setpriv");
            installCommand += " util-linux";
        }
        if (missing.Count > 0)
        {
            throw new InvalidOperationException(
                $"{product} is not installed (missing {string.Join(", ", missing)}). Install it with: {installCommand}");
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Letters and digits only, so it is safe unquoted in connection strings and config files.</summary>
    public static string NewPassword() => RandomNumberGenerator.GetString(PasswordAlphabet, 24);

    /// <summary><c>{prefix}_{32 hex digits}</c>: unique per call, and a plain identifier in SQL and LDAP alike.</summary>
    public static string UniqueName(string prefix)
    {
        if (prefix.Length is 0 or > 20 || !char.IsAsciiLetterLower(prefix[0]) || !prefix.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '_'))
        {
            throw new ArgumentException("prefix must be 1-20 characters of a-z, 0-9 and _, starting with a letter", nameof(prefix));
        }
        return $"{prefix}_{Guid.NewGuid():N}";
    }

    /// <summary>The command line that runs <paramref name="argv"/> as <paramref name="user"/> in the same process (setpriv execs, so the PID stays the server's).</summary>
    public static IReadOnlyList<string> AsUser(string? user, IReadOnlyList<string> argv) =>
        user is null ? argv : ["/usr/bin/setpriv", $"--reuid={user}", $"--regid={user}", "--init-groups", "--", .. argv];

    /// <summary>Runs a helper to completion; a non-zero exit throws with everything it printed.</summary>
    public static async Task RunAsync(string? user, IReadOnlyList<string> argv, CancellationToken ct, string? workingDirectory = null)
    {
        var command = AsUser(user, argv);
        var info = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "/",
        };
        foreach (var arg in command.Skip(1))
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {command[0]}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        try
        {
            await process.WaitForExitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        var output = await stdout + await stderr;
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{string.Join(' ', argv)} exited with {process.ExitCode}:\n{Tail(output)}");
        }
    }

    /// <summary>
    /// Writes a server's certificate and key into its directory, owned by the service user and
    /// readable by it alone (PostgreSQL refuses a key others can read), and returns their paths.
    /// </summary>
    public static async Task<(string CertificatePath, string KeyPath)> WriteTlsFilesAsync(PemCertificate certificate, string directory, string? user, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var certificatePath = Path.Combine(directory, "server.crt");
        var keyPath = Path.Combine(directory, "server.key");
        await File.WriteAllTextAsync(certificatePath, certificate.CertificatePem, ct);
        await File.WriteAllTextAsync(keyPath, certificate.KeyPem, ct);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        if (user is not null)
        {
            await RunAsync(null, ["chown", $"{user}:{user}", certificatePath, keyPath], ct);
        }
        return (certificatePath, keyPath);
    }

    /// <summary>A fresh directory under the temp path, owned by the service user and closed to everyone else.</summary>
    public static async Task<string> CreateDirectoryAsync(string kind, string? user, CancellationToken ct)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("the database server fixtures run on Linux (Debian's packages)");
        }
        var path = Path.Combine(Path.GetTempPath(), $"vault-{kind}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (user is not null)
        {
            await RunAsync(null, ["chown", $"{user}:", path], ct);
        }
        return path;
    }

    /// <summary>A log file as it is right now, while the server may still be writing to it.</summary>
    public static string ReadShared(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            return reader.ReadToEnd();
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return "";
        }
    }

    public static string Tail(string text, int chars = 8000) =>
        text.Length <= chars ? text : "…" + text[^chars..];
}
