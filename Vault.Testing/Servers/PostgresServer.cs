using System.Globalization;
using Npgsql;

namespace Vault.Testing.Servers;

/// <summary>
/// A private PostgreSQL 15 on 127.0.0.1 and a free port, in its own temp directory: password
/// logins over TCP are real SCRAM-SHA-256, TLS is offered with a certificate from the run's CA
/// (<see cref="TestCertificates.Run"/>), and every statement is logged to a file
/// (<see cref="LogText"/>). Use it as a collection fixture (<c>[Collection("postgres")]</c>) or per
/// test with <c>await using var pg = await PostgresServer.StartAsync();</c>.
/// </summary>
/// <remarks>
/// As root the server runs as <c>postgres</c> (initdb and postgres refuse root). There is no
/// fsync, to start fast, but commits are still written to the OS before they are acknowledged
/// (<c>synchronous_commit</c> stays on): a killed server loses nothing it acknowledged, only a
/// machine crash would.
/// </remarks>
public sealed class PostgresServer : ServerFixture
{
    private const string BinDirectory = "/usr/lib/postgresql/15/bin";
    private const string InstallCommand = "apt-get install -y postgresql-15";
    private const string LogFileName = "postgresql.log";

    public string Database => "postgres";

    public string SuperUser => "postgres";

    public string SuperPassword { get; } = ServerHost.NewPassword();

    /// <summary>The superuser's connection string (see <see cref="ConnectionString(string, string)"/>).</summary>
    public string SuperConnectionString => ConnectionString(SuperUser, SuperPassword);

    /// <summary>Starts a new private server; dispose it to stop it and delete its files.</summary>
    /// <exception cref="InvalidOperationException">PostgreSQL 15 is not installed (the message has the install command), or it failed to start (the message has its log).</exception>
    public static Task<PostgresServer> StartAsync(CancellationToken ct = default) => StartNewAsync(new PostgresServer(), ct);

    /// <summary>
    /// Starts a new private server that takes connections over TLS only (<c>hostssl</c> in
    /// <c>pg_hba.conf</c>, <c>ssl=on</c>) with <paramref name="certificate"/>; the server's log shows
    /// each session's TLS (<c>SSL enabled (protocol=…)</c> in its connection lines).
    /// </summary>
    public static Task<PostgresServer> StartTlsOnlyAsync(PemCertificate certificate, CancellationToken ct = default) =>
        StartNewAsync(new PostgresServer { _tls = certificate, _tlsOnly = true }, ct);

    /// <summary>
    /// Starts a new private server that makes commits durable as a production server does
    /// (<c>fsync</c> and full-page writes on) and logs no statements: for measuring a vault whose
    /// records live in PostgreSQL against one that fsyncs its own log.
    /// </summary>
    public static Task<PostgresServer> StartDurableAsync(CancellationToken ct = default) =>
        StartNewAsync(new PostgresServer { _durable = true }, ct);

    private bool _durable;

    /// <summary>The certificate the server offers TLS with (by default the run's, <see cref="TestCertificates.RunServerCertificate"/>).</summary>
    private PemCertificate? _tls;
    private bool _tlsOnly;

    /// <summary>A connection string for <paramref name="user"/> on <see cref="Database"/>; no pooling, 15 s connect timeout.</summary>
    /// <remarks>
    /// Each connection is a forked backend and a SCRAM exchange; on a saturated 2-core machine that
    /// has taken over 5 s (a test's own ALTER ROLE failed with a connect timeout). No test measures
    /// the fixture's connect time, and a refused or unreachable server still fails at once.
    /// </remarks>
    public string ConnectionString(string user, string password) => ConnectionString(user, password, Database);

    /// <summary>As <see cref="ConnectionString(string, string)"/>, on another database.</summary>
    public string ConnectionString(string user, string password, string database) =>
        new NpgsqlConnectionStringBuilder
        {
            Host = Host,
            Port = Port,
            Database = database,
            Username = user,
            Password = password,
            Pooling = false,
            Timeout = 15,
        }.ConnectionString;

    /// <summary>Creates a uniquely named role <c>WITH LOGIN PASSWORD</c> <paramref name="password"/> and returns its name.</summary>
    /// <remarks>
    /// The statement is sent with <c>log_statement</c> off for that session, so the password it
    /// carries is not in <see cref="LogText"/>: whatever the log holds came from the code under test.
    /// </remarks>
    public async Task<string> CreateLoginRoleAsync(string password, string prefix = "svc")
    {
        var name = ServerHost.UniqueName(prefix);
        await WithConnectionAsync(SuperUser, SuperPassword, async connection =>
        {
            await using (var quiet = new NpgsqlCommand("SET log_statement = 'none'", connection))
            {
                await quiet.ExecuteNonQueryAsync();
            }
            await using var create = new NpgsqlCommand($"CREATE ROLE {QuoteIdentifier(name)} WITH LOGIN PASSWORD {QuoteLiteral(password)}", connection);
            return await create.ExecuteNonQueryAsync();
        }, CancellationToken.None);
        return name;
    }

    /// <summary>Runs <paramref name="sql"/> as the superuser (logged like any statement).</summary>
    public Task ExecuteAsync(string sql) =>
        WithConnectionAsync(SuperUser, SuperPassword, async connection =>
        {
            await using var command = new NpgsqlCommand(sql, connection);
            return await command.ExecuteNonQueryAsync();
        }, CancellationToken.None);

    /// <summary>Runs <paramref name="sql"/> as the superuser and returns the first column of the first row.</summary>
    public Task<object?> ScalarAsync(string sql) =>
        WithConnectionAsync(SuperUser, SuperPassword, async connection =>
        {
            await using var command = new NpgsqlCommand(sql, connection);
            var value = await command.ExecuteScalarAsync();
            return value is DBNull ? null : value;
        }, CancellationToken.None);

    /// <summary>Whether a fresh connection as <paramref name="user"/> authenticates.</summary>
    /// <returns><c>false</c> when the server refuses the credentials (SQLSTATE 28P01 or 28000).</returns>
    /// <exception cref="NpgsqlException">Any other failure, such as the server being down.</exception>
    public async Task<bool> CanLoginAsync(string user, string password)
    {
        try
        {
            return await WithConnectionAsync(user, password, _ => Task.FromResult(true), CancellationToken.None);
        }
        catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification)
        {
            return false;
        }
    }

    private protected override async Task InitializeAsync(CancellationToken ct)
    {
        ServerHost.RequireBinaries("PostgreSQL 15", InstallCommand, $"{BinDirectory}/initdb", $"{BinDirectory}/postgres");
        var user = ServerHost.ServiceUser("postgres");
        Instance = await ServerInstance.CreateAsync(
            new ServerSpec("pg", "PostgreSQL 15", user, LogFileName, Signal.Int, Signal.Quit, CommandLine, ProbeAsync),
            ct);
        var directory = Instance.Directory;
        var passwordFile = Path.Combine(directory, "superuser.pw");
        await File.WriteAllTextAsync(passwordFile, SuperPassword, ct);
        await ServerHost.RunAsync(
            user,
            [$"{BinDirectory}/initdb", "-D", Path.Combine(directory, "data"), "-U", SuperUser, $"--pwfile={passwordFile}",
             "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"],
            ct,
            directory);
        File.Delete(passwordFile);
        // Only what the tests use: the socket (in a directory only the server's user can enter)
        // and SCRAM over IPv4 loopback, so a wrong password really is refused.
        var hostLine = "host all all 127.0.0.1/32 scram-sha-256\n";
        {
            var certificate = _tls ?? TestCertificates.RunServerCertificate;
            // TLS only: a connection without it matches no line and is refused.
            var (certificatePath, keyPath) = await ServerHost.WriteTlsFilesAsync(certificate, directory, user, ct);
            await File.AppendAllTextAsync(
                Path.Combine(directory, "data", "postgresql.conf"),
                $"ssl = on\nssl_cert_file = '{certificatePath}'\nssl_key_file = '{keyPath}'\n",
                ct);
            if (_tlsOnly)
            {
                hostLine = "hostssl all all 127.0.0.1/32 scram-sha-256\n";
            }
        }
        await File.WriteAllTextAsync(
            Path.Combine(directory, "data", "pg_hba.conf"),
            "local all all trust\n" + hostLine,
            ct);
        await Instance.StartAsync(ct);
    }

    private IReadOnlyList<string> CommandLine(string directory, int port) =>
    [
        $"{BinDirectory}/postgres", "-D", Path.Combine(directory, "data"), "-p", port.ToString(CultureInfo.InvariantCulture),
        "-c", "listen_addresses=127.0.0.1",
        "-c", $"unix_socket_directories={directory}",
        "-c", "password_encryption=scram-sha-256",
        "-c", "logging_collector=off",
        "-c", "log_destination=stderr",
        "-c", "log_line_prefix=%m [%p] %q%u@%d ",
        "-c", "log_connections=on",
        .. _durable
            ? (string[])["-c", "log_statement=none", "-c", "shared_buffers=128MB"]
            : ["-c", "log_statement=all", "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "shared_buffers=16MB"],
    ];

    private Task ProbeAsync(int port, CancellationToken ct) =>
        WithConnectionAsync(SuperUser, SuperPassword, _ => Task.FromResult(true), ct);

    private async Task<T> WithConnectionAsync<T>(string user, string password, Func<NpgsqlConnection, Task<T>> action, CancellationToken ct)
    {
        // Type loading off: the fixture's own connections stay one login line in the log, not a
        // catalog query per new user.
        var builder = new NpgsqlDataSourceBuilder(ConnectionString(user, password));
        builder.ConfigureTypeLoading(options => options.EnableTypeLoading(false));
        await using var dataSource = builder.Build();
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        return await action(connection);
    }

    private static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    // standard_conforming_strings is on (the default since 9.1): only the quote needs doubling.
    private static string QuoteLiteral(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";
}
