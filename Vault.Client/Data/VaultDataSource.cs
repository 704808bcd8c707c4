using System.Data.Common;
using Vault.Client.Credentials;

namespace Vault.Client.Data;

/// <summary>
/// A <see cref="DbDataSource"/> whose database user and password come from the vault: it hands
/// out connections of a driver's data source built for the current user, and builds a new one
/// when the user name changes. The base of <c>VaultNpgsqlDataSource</c> and <c>VaultMySqlDataSource</c>.
/// </summary>
/// <remarks>
/// <para>
/// Why one driver data source per user: Npgsql and MySqlConnector fix the user name of a data
/// source when it is built (their password callbacks can change only the password). Changing the
/// user name of a live data source would let a connection that read the old name be handed the new
/// password. Here every driver data source keeps one user name for life, and its password callback
/// answers for that name, so a name and a password from two different credentials never meet.
/// </para>
/// <para>
/// When the user changes, the previous data source stops receiving new connections and its idle
/// pooled connections are closed; connections in use carry on (the previous credential stays
/// valid for a while, see <see cref="VaultCredentialProvider"/>). The one before that is disposed.
/// A connection object is bound to the user it was created for: create connections per unit of
/// work, as <see cref="DbDataSource"/> intends, rather than keeping one object for hours.
/// </para>
/// </remarks>
/// <typeparam name="TDataSource">The driver's data source type.</typeparam>
public abstract class VaultDataSource<TDataSource> : DbDataSource
    where TDataSource : DbDataSource
{
    private readonly bool _ownsCredentials;
    private readonly Lock _lock = new();
    private volatile Generation? _current;
    private Generation? _previous;
    private int _disposed;

    /// <summary>Wraps a provider whose first credential has been fetched.</summary>
    /// <param name="credentials">The provider; <see cref="VaultCredentialProvider.Current"/> must be set.</param>
    /// <param name="ownsCredentials">Dispose the provider (revoking its leases) with this data source.</param>
    /// <exception cref="ArgumentException">The provider has no credential yet.</exception>
    protected VaultDataSource(VaultCredentialProvider credentials, bool ownsCredentials)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        if (credentials.Current is null)
        {
            throw new ArgumentException("the credential provider has not fetched its first credential (await GetAsync first)", nameof(credentials));
        }
        Credentials = credentials;
        _ownsCredentials = ownsCredentials;
    }

    /// <summary>The provider that keeps the credential current.</summary>
    public VaultCredentialProvider Credentials { get; }

    /// <summary>The connection string of the current user's data source (no password in it).</summary>
    public override string ConnectionString => CurrentDataSource.ConnectionString;

    /// <summary>
    /// The driver data source of the current user. Take it per unit of work and do not keep it:
    /// after the user changes it is retired.
    /// </summary>
    /// <exception cref="ObjectDisposedException">This data source was disposed.</exception>
    public TDataSource CurrentDataSource
    {
        get
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            var username = Credentials.Current!.Username;
            var current = _current;
            if (current is not null && string.Equals(current.Username, username, StringComparison.Ordinal))
            {
                return current.DataSource;
            }
            TDataSource? stale = null;
            TDataSource? retired = null;
            lock (_lock)
            {
                current = _current;
                if (current is null || !string.Equals(current.Username, username, StringComparison.Ordinal))
                {
                    stale = _previous?.DataSource;
                    _previous = current;
                    retired = current?.DataSource;
                    current = new Generation(username, CreateDataSource(username));
                    _current = current;
                }
            }
            if (retired is not null)
            {
                RetireQuietly(retired);
            }
            if (stale is not null)
            {
                _ = DisposeQuietlyAsync(stale);
            }
            return current.DataSource;
        }
    }

    /// <summary>
    /// Builds the driver's data source for <paramref name="username"/>; its password must come from
    /// <see cref="VaultCredentialProvider.GetPassword"/> for that name, at each new physical connection.
    /// </summary>
    /// <param name="username">The user every connection of the new data source logs in as.</param>
    /// <returns>The new data source.</returns>
    protected abstract TDataSource CreateDataSource(string username);

    /// <summary>Called once when a data source stops being current: e.g. close its idle pooled connections.</summary>
    /// <param name="dataSource">The data source of the previous user.</param>
    protected virtual void Retire(TDataSource dataSource)
    {
    }

    /// <inheritdoc />
    protected override DbConnection CreateDbConnection() => CurrentDataSource.CreateConnection();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            ReleaseAsync().AsTask().GetAwaiter().GetResult();
        }
        base.Dispose(disposing);
    }

    /// <inheritdoc />
    protected override async ValueTask DisposeAsyncCore()
    {
        await ReleaseAsync().ConfigureAwait(false);
        // The base calls Dispose(true), which finds everything released already.
        await base.DisposeAsyncCore().ConfigureAwait(false);
    }

    private async ValueTask ReleaseAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        Generation? current;
        Generation? previous;
        lock (_lock)
        {
            (current, previous) = (_current, _previous);
            (_current, _previous) = (null, null);
        }
        // Close the pools before the leases are revoked: revoking ends the users' sessions.
        if (current is not null)
        {
            await current.DataSource.DisposeAsync().ConfigureAwait(false);
        }
        if (previous is not null)
        {
            await previous.DataSource.DisposeAsync().ConfigureAwait(false);
        }
        if (_ownsCredentials)
        {
            await Credentials.DisposeAsync().ConfigureAwait(false);
        }
    }

    private void RetireQuietly(TDataSource dataSource)
    {
        try
        {
            Retire(dataSource);
        }
        catch (Exception)
        {
            // Closing the previous user's idle connections early is a courtesy; the caller's
            // connection must not fail for it. They close when the data source is disposed.
        }
    }

    private static async Task DisposeQuietlyAsync(TDataSource dataSource)
    {
        try
        {
            await dataSource.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Its user is gone or going; closing what is left of its pool is best effort.
        }
    }

    private sealed record Generation(string Username, TDataSource DataSource);
}
