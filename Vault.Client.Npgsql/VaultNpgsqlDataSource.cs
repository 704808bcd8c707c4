using System.Data.Common;
using Npgsql;
using Vault.Client.Credentials;
using Vault.Client.Data;

namespace Vault.Client.Npgsql;

/// <summary>
/// A PostgreSQL data source whose user name and password come from the vault. Built by
/// <see cref="NpgsqlDataSourceBuilderExtensions.BuildVaultDataSourceAsync"/>; use it as you would an
/// <see cref="NpgsqlDataSource"/> (it hands out <see cref="NpgsqlConnection"/>s), or as a
/// <see cref="DbDataSource"/> (Dapper, EF Core's <c>UseNpgsql(DbDataSource)</c>).
/// </summary>
/// <remarks>
/// <para>
/// Behind it is one <see cref="NpgsqlDataSource"/> per database user, built from the same
/// <see cref="NpgsqlDataSourceBuilder"/> with that user name and Npgsql's password provider
/// (<see cref="NpgsqlDataSourceBuilder.UsePasswordProvider"/>), which Npgsql calls for every new
/// physical connection; it answers from memory with the vault's current password for that user,
/// so a rotated password is used from the next physical connection on. Npgsql cannot change the
/// user name of a built data source (no user-name provider exists in Npgsql 10), hence a new one
/// when the vault's user changes — see <see cref="VaultDataSource{TDataSource}"/>.
/// </para>
/// <para>
/// Pooled connections keep the login they were opened with; set <c>Connection Lifetime</c> to move
/// them to a new password or user sooner than the pool's idle pruning would.
/// </para>
/// </remarks>
public sealed class VaultNpgsqlDataSource : VaultDataSource<NpgsqlDataSource>
{
    private readonly NpgsqlDataSourceBuilder _builder;

    internal VaultNpgsqlDataSource(NpgsqlDataSourceBuilder builder, VaultCredentialProvider credentials, bool ownsCredentials)
        : base(credentials, ownsCredentials)
    {
        _builder = builder;
    }

    /// <summary>Creates a connection (not yet open) for the current user.</summary>
    /// <returns>The connection; dispose it after use.</returns>
    public new NpgsqlConnection CreateConnection() => CurrentDataSource.CreateConnection();

    /// <summary>Opens a connection for the current user.</summary>
    /// <returns>The open connection; dispose it after use.</returns>
    /// <exception cref="NpgsqlException">The server refused the login or could not be reached.</exception>
    public new NpgsqlConnection OpenConnection() => CurrentDataSource.OpenConnection();

    /// <summary>Opens a connection for the current user.</summary>
    /// <param name="cancellationToken">Cancels the open.</param>
    /// <returns>The open connection; dispose it after use.</returns>
    /// <exception cref="NpgsqlException">The server refused the login or could not be reached.</exception>
    public new ValueTask<NpgsqlConnection> OpenConnectionAsync(CancellationToken cancellationToken = default) =>
        CurrentDataSource.OpenConnectionAsync(cancellationToken);

    /// <summary>Creates a command that opens a connection of the current user when executed and closes it afterwards.</summary>
    /// <param name="commandText">The SQL, or null to set it later.</param>
    /// <returns>The command.</returns>
    public new NpgsqlCommand CreateCommand(string? commandText = null) => CurrentDataSource.CreateCommand(commandText);

    /// <summary>Creates a batch that opens a connection of the current user when executed and closes it afterwards.</summary>
    /// <returns>The batch.</returns>
    public new NpgsqlBatch CreateBatch() => CurrentDataSource.CreateBatch();

    /// <inheritdoc />
    protected override DbCommand CreateDbCommand(string? commandText = null) => CreateCommand(commandText);

    /// <inheritdoc />
    protected override DbBatch CreateDbBatch() => CreateBatch();

    /// <inheritdoc />
    protected override NpgsqlDataSource CreateDataSource(string username)
    {
        // The base calls this under its lock, so the shared builder is changed by one thread at a time;
        // Build() copies the settings, so each data source keeps the user name it was built with.
        _builder.ConnectionStringBuilder.Username = username;
        _builder.ConnectionStringBuilder.Password = null;
        _builder.UsePasswordProvider(
            _ => PasswordOf(username),
            (_, _) => ValueTask.FromResult(PasswordOf(username)));
        return _builder.Build();
    }

    /// <inheritdoc />
    protected override void Retire(NpgsqlDataSource dataSource) => dataSource.Clear();

    private string PasswordOf(string username) =>
        Credentials.GetPassword(username)
        ?? throw new InvalidOperationException($"the vault credential for user '{username}' has been replaced twice since this connection was created");
}
