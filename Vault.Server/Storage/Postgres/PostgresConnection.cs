using Npgsql;

namespace Vault.Server.Storage.Postgres;

/// <summary>
/// The connection to the shared database, from the file the operator gives
/// (<c>Vault:StorageConnectionFile</c>: an Npgsql connection string, which may hold a password, so
/// never an argument). A database beyond loopback must be reached with its certificate verified
/// (<c>SSL Mode=VerifyFull</c>, with <c>Root Certificate</c> for a private CA): PostgreSQL holds only
/// ciphertext, but who can stand in for it can refuse or replay the vault's writes.
/// </summary>
public static class PostgresConnection
{
    /// <summary>How long a node's session may sit inside a transaction before the database ends it (a paused node; see <see cref="LeaderLease"/>).</summary>
    public static readonly TimeSpan IdleInTransaction = TimeSpan.FromSeconds(5);

    /// <exception cref="ValidationException">No file, not a connection string, or TLS not verified beyond loopback.</exception>
    public static NpgsqlDataSource Open(string? file)
    {
        return Create(Read(file));
    }

    private static string Read(string? file)
    {
        if (string.IsNullOrEmpty(file))
        {
            throw new ValidationException("storage-connection-file", "is required with StorageKind=postgres (a file holding the connection string)");
        }
        string text;
        try
        {
            text = File.ReadAllText(file).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ValidationException("storage-connection-file", $"cannot be read: {ex.Message}");
        }
        return text;
    }

    /// <summary>As <see cref="Open"/>, from the connection string itself (the offline migration reads its own file).</summary>
    /// <exception cref="ValidationException">Not a connection string, or TLS not verified beyond loopback.</exception>
    public static NpgsqlDataSource Create(string text)
    {
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(text);
        }
        catch (ArgumentException)
        {
            // Not repeated: it may hold a password.
            throw new ValidationException("storage-connection-file", "does not hold a connection string PostgreSQL takes (Host=…;Database=…;Username=…)");
        }
        if (string.IsNullOrEmpty(builder.Host))
        {
            throw new ValidationException("storage-connection-file", "names no Host");
        }
        if (!builder.Host.Split(',').All(IsLoopback) && builder.SslMode != SslMode.VerifyFull)
        {
            throw new ValidationException("storage-connection-file",
                $"the database at {builder.Host} must be reached with its certificate verified: set SSL Mode=VerifyFull (and Root Certificate=… for a private CA)");
        }
        builder.Options = string.Join(' ', new[] { builder.Options, LeaderLease.SessionOptions(IdleInTransaction) }.Where(o => !string.IsNullOrEmpty(o)));
        return NpgsqlDataSource.Create(builder.ConnectionString);
    }

    /// <summary>One entry of Host (several are tried in turn): a Unix socket path, or a loopback name or address, with or without a port.</summary>
    private static bool IsLoopback(string entry)
    {
        var host = entry.Trim();
        if (host.StartsWith('/'))
        {
            return true;
        }
        if (host.StartsWith('[') && host.IndexOf(']', StringComparison.Ordinal) is > 0 and var close)
        {
            host = host[1..close];
        }
        else if (host.Count(c => c == ':') == 1)
        {
            host = host[..host.IndexOf(':', StringComparison.Ordinal)];
        }
        return host is "localhost" || (System.Net.IPAddress.TryParse(host, out var address) && System.Net.IPAddress.IsLoopback(address));
    }
}
