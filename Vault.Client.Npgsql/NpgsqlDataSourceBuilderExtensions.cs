using Npgsql;
using Vault.Client.Credentials;

namespace Vault.Client.Npgsql;

/// <summary>Builds PostgreSQL data sources whose credentials come from the vault.</summary>
public static class NpgsqlDataSourceBuilderExtensions
{
    /// <summary>
    /// Builds a data source that logs in with a credential from the vault: a dynamic role's user
    /// (its lease renewed, and replaced by a new one before its max TTL), an account checked out of
    /// a set, or a rotation target's current account (re-read when the vault rotates it).
    /// </summary>
    /// <param name="builder">
    /// Host, database, pooling and the rest of the connection settings; its user name, password and
    /// password provider are set by the vault (configure none of them). The data source keeps the builder (to build one data source per
    /// database user): do not change it afterwards.
    /// </param>
    /// <param name="client">The vault client; its token must be allowed to read the source.</param>
    /// <param name="source">Where the credential comes from.</param>
    /// <param name="options">How the credential is kept fresh; null uses the defaults.</param>
    /// <param name="cancellationToken">Cancels fetching the first credential.</param>
    /// <returns>The data source; disposing it closes its pools and revokes its leases.</returns>
    /// <exception cref="Grpc.Core.RpcException">The first credential could not be had (unknown source, no permission, no free account, vault unreachable).</exception>
    public static async Task<VaultNpgsqlDataSource> BuildVaultDataSourceAsync(
        this NpgsqlDataSourceBuilder builder,
        VaultClient client,
        VaultCredentialSource source,
        VaultCredentialProviderOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var credentials = new VaultCredentialProvider(client, source, options);
        try
        {
            await credentials.GetAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await credentials.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return new VaultNpgsqlDataSource(builder, credentials, ownsCredentials: true);
    }

    /// <summary>
    /// Builds a data source over a credential provider the caller owns (e.g. one shared with other
    /// consumers); the provider must have fetched its first credential.
    /// </summary>
    /// <param name="builder">The connection settings; kept by the data source, do not change it afterwards.</param>
    /// <param name="credentials">The provider; disposing the data source does not dispose it.</param>
    /// <returns>The data source.</returns>
    /// <exception cref="ArgumentException">The provider has no credential yet.</exception>
    public static VaultNpgsqlDataSource BuildVaultDataSource(this NpgsqlDataSourceBuilder builder, VaultCredentialProvider credentials)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return new VaultNpgsqlDataSource(builder, credentials, ownsCredentials: false);
    }
}
