namespace Vault.Client;

/// <summary>Where a <see cref="VaultClient"/> connects and how it authenticates.</summary>
public sealed class VaultClientOptions
{
    /// <summary>The address used when none is given: a local dev server.</summary>
    public const string DefaultAddress = "http://127.0.0.1:8200";

    /// <summary>
    /// The server's address, <c>http://HOST:PORT</c> or <c>https://HOST:PORT</c>; for several nodes,
    /// their addresses separated by commas (see <see cref="VaultClient.Addresses"/>).
    /// </summary>
    public string Address { get; set; } = DefaultAddress;

    /// <summary>
    /// The token sent as <c>authorization: Bearer &lt;token&gt;</c>; null or empty sends none (unless
    /// <see cref="RoleId"/> and <see cref="SecretId"/> are set). Set a token or AppRole ids, not both.
    /// </summary>
    public string? Token { get; set; }

    /// <summary>
    /// The AppRole role id to log in with, together with <see cref="SecretId"/>. When both are set the
    /// client logs in on its first call and keeps a token of its own: it renews the token at two
    /// thirds of its lifetime and logs in again once the token cannot be renewed any further (its
    /// max TTL). A secret id with a limited number of uses is spent by each of those logins.
    /// </summary>
    public string? RoleId { get; set; }

    /// <summary>The AppRole secret id that goes with <see cref="RoleId"/>.</summary>
    public string? SecretId { get; set; }

    /// <summary>
    /// A PEM file of one or more certificates trusted as roots for the server's TLS certificate.
    /// When set, only these roots are trusted (the system store is not consulted); when null, the
    /// system's trusted roots apply.
    /// </summary>
    public string? CaCertificateFile { get; set; }

    /// <summary>How long to wait for a TCP connection (and TLS handshake) before giving up. Default 10 seconds.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long each call this client makes may take, from sending the request to the whole answer
    /// (connecting included); when it runs out the call fails with
    /// <see cref="Grpc.Core.StatusCode.DeadlineExceeded"/>. Null (the default) sets no deadline: the
    /// caller's cancellation token is the only limit. Streams (<see cref="VaultClient.WatchTargetAsync"/>)
    /// have no deadline either way, and a lease's background renewals and revocation keep their own.
    /// A call that asks the server to wait (<see cref="VaultClient.BorrowAccountAsync"/> with a wait)
    /// gets that wait on top. <c>vaultctl</c> sets 60 seconds unless told otherwise.
    /// </summary>
    public TimeSpan? Timeout { get; set; }

    /// <summary>The clock the client plans its AppRole token renewals and re-logins on; the system clock unless a test moves one.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>
    /// Options from the environment variables <c>VAULT_ADDR</c>, <c>VAULT_TOKEN</c> and
    /// <c>VAULT_CACERT</c>, as the <c>vaultctl</c> CLI reads them. Unset or empty variables leave the defaults.
    /// </summary>
    /// <returns>A new options instance.</returns>
    public static VaultClientOptions FromEnvironment() => FromEnvironment(Environment.GetEnvironmentVariable);

    /// <summary>
    /// Options from <c>VAULT_ADDR</c>, <c>VAULT_TOKEN</c> and <c>VAULT_CACERT</c> as
    /// <paramref name="getEnvironmentVariable"/> reads them: for a host whose settings come from
    /// somewhere other than the process environment, or a test that must not change it.
    /// </summary>
    /// <param name="getEnvironmentVariable">Returns a variable's value, or null when it is unset.</param>
    /// <returns>A new options instance.</returns>
    public static VaultClientOptions FromEnvironment(Func<string, string?> getEnvironmentVariable)
    {
        ArgumentNullException.ThrowIfNull(getEnvironmentVariable);
        var options = new VaultClientOptions();
        if (getEnvironmentVariable("VAULT_ADDR") is { Length: > 0 } address)
        {
            options.Address = address;
        }
        if (getEnvironmentVariable("VAULT_TOKEN") is { Length: > 0 } token)
        {
            options.Token = token;
        }
        if (getEnvironmentVariable("VAULT_CACERT") is { Length: > 0 } caCert)
        {
            options.CaCertificateFile = caCert;
        }
        return options;
    }
}
