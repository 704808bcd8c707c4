using System.Data.Common;
using MySqlConnector;
using Vault.Client.Credentials;
using Vault.Client.Data;

namespace Vault.Client.MySqlConnector;

/// <summary>
/// A MySQL / MariaDB data source whose user name and password come from the vault. Built by
/// <see cref="MySqlDataSourceBuilderExtensions.BuildVaultDataSourceAsync"/>; it hands out
/// <see cref="MySqlConnection"/>s, and works wherever a <see cref="DbDataSource"/> does.
/// </summary>
/// <remarks>
/// Behind it is one <see cref="MySqlDataSource"/> per database user (MySqlConnector fixes a data
/// source's user name when it is built). Every connection it hands out carries a
/// <see cref="MySqlConnection.ProvidePasswordCallback"/>, which MySqlConnector calls with the user
/// name it is about to log in with, for each new physical connection; it answers from memory with
/// the vault's current password for that user. See <see cref="VaultDataSource{TDataSource}"/>.
/// </remarks>
public sealed class VaultMySqlDataSource : VaultDataSource<MySqlDataSource>
{
    private readonly MySqlDataSourceBuilder _builder;
    private readonly Func<MySqlProvidePasswordContext, string> _passwordCallback;

    internal VaultMySqlDataSource(MySqlDataSourceBuilder builder, VaultCredentialProvider credentials, bool ownsCredentials)
        : base(credentials, ownsCredentials)
    {
        _builder = builder;
        _passwordCallback = context => Credentials.GetPassword(context.UserId)
            ?? throw new InvalidOperationException($"the vault credential for user '{context.UserId}' has been replaced twice since this connection was created");
    }

    /// <summary>Creates a connection (not yet open) for the current user.</summary>
    /// <returns>The connection; dispose it after use.</returns>
    public new MySqlConnection CreateConnection()
    {
        var connection = CurrentDataSource.CreateConnection();
        connection.ProvidePasswordCallback = _passwordCallback;
        return connection;
    }

    /// <summary>Opens a connection for the current user.</summary>
    /// <param name="cancellationToken">Cancels the open.</param>
    /// <returns>The open connection; dispose it after use.</returns>
    /// <exception cref="MySqlException">The server refused the login or could not be reached.</exception>
    public new async ValueTask<MySqlConnection> OpenConnectionAsync(CancellationToken cancellationToken = default)
    {
        var connection = CreateConnection();
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <inheritdoc />
    protected override DbConnection CreateDbConnection() => CreateConnection();

    /// <inheritdoc />
    protected override MySqlDataSource CreateDataSource(string username)
    {
        // Called under the base's lock: one thread at a time changes the shared builder.
        _builder.ConnectionStringBuilder.UserID = username;
        _builder.ConnectionStringBuilder.Password = "";
        return _builder.Build();
    }

    /// <inheritdoc />
    protected override void Retire(MySqlDataSource dataSource)
    {
        using var connection = dataSource.CreateConnection();
        MySqlConnection.ClearPool(connection);
    }
}
