using System.Globalization;
using MySqlConnector;

namespace Vault.Testing.Servers;

/// <summary>
/// A private MariaDB 10.11 on 127.0.0.1 and a free port, in its own temp directory, with the
/// general query log on (<see cref="GeneralLogText"/>) and an admin account usable over TCP
/// (<see cref="SuperUser"/>, all privileges with grant option). Use it as a collection fixture
/// (<c>[Collection("mariadb")]</c>) or per test with <c>await using var db = await MariaDbServer.StartAsync();</c>.
/// </summary>
/// <remarks>
/// As root the server runs as <c>mysql</c>. <c>mariadb-install-db</c> takes seconds, so it runs
/// once per test process into a template that every instance copies. There is no fsync, to start
/// fast, but the redo log is written to the OS at every commit
/// (<c>innodb_flush_log_at_trx_commit=2</c>): a killed server loses nothing it acknowledged.
/// </remarks>
public sealed class MariaDbServer : ServerFixture
{
    private const string Daemon = "/usr/sbin/mariadbd";
    private const string InstallDb = "/usr/bin/mariadb-install-db";
    private const string InstallCommand = "apt-get install -y mariadb-server";
    private const string ErrorLogFileName = "mariadbd.log";
    private const string GeneralLogFileName = "general.log";
    private const string InitFileName = "init.sql";

    // Shared by install-db and the server, so the template's redo log fits without a resize.
    // No fsync anywhere, but commits reach the OS (flush_log_at_trx_commit=2, not 0): the fault
    // tests kill the server and expect every acknowledged commit back.
    private static readonly string[] SpeedOptions =
    [
        "--skip-name-resolve",
        "--innodb-buffer-pool-size=16M",
        "--innodb-log-file-size=8M",
        "--innodb-flush-log-at-trx-commit=2",
        "--innodb-doublewrite=0",
        "--innodb-flush-method=nosync",
        "--innodb-buffer-pool-dump-at-shutdown=0",
        "--innodb-buffer-pool-load-at-startup=0",
    ];

    private static readonly SemaphoreSlim TemplateLock = new(1, 1);
    private static string? _templateDataDirectory;
    private static Watchdog? _templateWatchdog;

    /// <summary><c>vault_admin</c>@<c>%</c>: all privileges on <c>*.*</c> with grant option, password login over TCP.</summary>
    public string SuperUser => "vault_admin";

    public string SuperPassword { get; } = ServerHost.NewPassword();

    /// <summary>The admin's connection string (see <see cref="ConnectionString"/>).</summary>
    public string SuperConnectionString => ConnectionString(SuperUser, SuperPassword);

    /// <summary>Starts a new private server; dispose it to stop it and delete its files.</summary>
    /// <exception cref="InvalidOperationException">MariaDB is not installed (the message has the install command), or it failed to start (the message has its log).</exception>
    public static Task<MariaDbServer> StartAsync(CancellationToken ct = default) => StartNewAsync(new MariaDbServer(), ct);

    /// <summary>
    /// Starts a new private server that takes connections over TLS only
    /// (<c>require_secure_transport</c>) with <paramref name="certificate"/>.
    /// </summary>
    public static Task<MariaDbServer> StartTlsOnlyAsync(PemCertificate certificate, CancellationToken ct = default) =>
        StartNewAsync(new MariaDbServer { _tls = certificate, _tlsOnly = true }, ct);

    /// <summary>The certificate the server offers TLS with (by default the run's, <see cref="TestCertificates.RunServerCertificate"/>).</summary>
    private PemCertificate? _tls;
    private bool _tlsOnly;
    private string[] _tlsOptions = [];

    /// <summary>The general query log so far: every connect and every statement, as the server received it.</summary>
    /// <remarks>MariaDB 10.11 logs <c>IDENTIFIED BY '…'</c> with the plaintext password (MySQL rewrites it; MariaDB does not).</remarks>
    public string GeneralLogText() => InstanceOrNull is null ? "" : ServerHost.ReadShared(Path.Combine(InstanceOrNull.Directory, GeneralLogFileName));

    /// <summary>A connection string for <paramref name="user"/>; no pooling, 15 s connect timeout (as PostgresServer's, for the same reason), no default database.</summary>
    public string ConnectionString(string user, string password) =>
        new MySqlConnectionStringBuilder
        {
            Server = Host,
            Port = (uint)Port,
            UserID = user,
            Password = password,
            Pooling = false,
            ConnectionTimeout = 15,
        }.ConnectionString;

    /// <summary>Creates <c>'name'@'%' IDENTIFIED BY</c> <paramref name="password"/> with a unique name and returns the name.</summary>
    /// <remarks>
    /// Sent with <c>sql_log_off</c> for that session, so the password is not in
    /// <see cref="GeneralLogText"/>: whatever the log holds came from the code under test.
    /// </remarks>
    public async Task<string> CreateLoginUserAsync(string password, string prefix = "svc")
    {
        var name = ServerHost.UniqueName(prefix);
        await using var connection = await OpenAsync(SuperUser, SuperPassword, CancellationToken.None);
        await using (var quiet = new MySqlCommand("SET SESSION sql_log_off = 1", connection))
        {
            await quiet.ExecuteNonQueryAsync();
        }
        await using var create = new MySqlCommand($"CREATE USER '{name}'@'%' IDENTIFIED BY '{MySqlHelper.EscapeString(password)}'", connection);
        await create.ExecuteNonQueryAsync();
        return name;
    }

    /// <summary>Runs <paramref name="sql"/> as <see cref="SuperUser"/> (logged like any statement).</summary>
    public async Task ExecuteAsync(string sql)
    {
        await using var connection = await OpenAsync(SuperUser, SuperPassword, CancellationToken.None);
        await using var command = new MySqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Runs <paramref name="sql"/> as <see cref="SuperUser"/> and returns the first column of the first row.</summary>
    public async Task<object?> ScalarAsync(string sql)
    {
        await using var connection = await OpenAsync(SuperUser, SuperPassword, CancellationToken.None);
        await using var command = new MySqlCommand(sql, connection);
        var value = await command.ExecuteScalarAsync();
        return value is DBNull ? null : value;
    }

    /// <summary>Whether a fresh connection as <paramref name="user"/> authenticates.</summary>
    /// <returns><c>false</c> when the server answers access denied (1045, or 1698 which MariaDB
    /// sometimes gives for an account that does not exist).</returns>
    /// <exception cref="MySqlException">Any other failure, such as the server being down.</exception>
    public async Task<bool> CanLoginAsync(string user, string password)
    {
        try
        {
            await using var connection = await OpenAsync(user, password, CancellationToken.None);
            return true;
        }
        catch (MySqlException ex) when (ex.ErrorCode is MySqlErrorCode.AccessDenied || ex.Number == 1698)
        {
            return false;
        }
    }

    private protected override async Task InitializeAsync(CancellationToken ct)
    {
        ServerHost.RequireBinaries("MariaDB", InstallCommand, Daemon, InstallDb);
        var user = ServerHost.ServiceUser("mysql");
        var template = await TemplateAsync(user, ct);
        Instance = await ServerInstance.CreateAsync(
            new ServerSpec("mariadb", "MariaDB 10.11", user, ErrorLogFileName, Signal.Term, Signal.Kill, CommandLine, ProbeAsync),
            ct);
        // cp -a keeps the service user as owner (we copy as root).
        await ServerHost.RunAsync(null, ["cp", "-a", template, Path.Combine(Instance.Directory, "data")], ct);
        // Runs once, at the first start, before the server accepts connections: the admin account
        // exists by the time the first login is tried.
        var initFile = Path.Combine(Instance.Directory, InitFileName);
        await File.WriteAllTextAsync(
            initFile,
            $"""
            CREATE USER '{SuperUser}'@'%' IDENTIFIED BY '{SuperPassword}';
            GRANT ALL PRIVILEGES ON *.* TO '{SuperUser}'@'%' WITH GRANT OPTION;
            """,
            ct);
        var (certificatePath, keyPath) = await ServerHost.WriteTlsFilesAsync(_tls ?? TestCertificates.RunServerCertificate, Instance.Directory, user, ct);
        _tlsOptions = [$"--ssl-cert={certificatePath}", $"--ssl-key={keyPath}", .. _tlsOnly ? ["--require-secure-transport=ON"] : Array.Empty<string>()];
        await Instance.StartAsync(ct);
        File.Delete(initFile);
    }

    private IReadOnlyList<string> CommandLine(string directory, int port)
    {
        var initFile = Path.Combine(directory, InitFileName);
        return
        [
            Daemon, "--no-defaults", "--basedir=/usr",
            $"--datadir={Path.Combine(directory, "data")}",
            $"--port={port.ToString(CultureInfo.InvariantCulture)}",
            "--bind-address=127.0.0.1",
            $"--socket={Path.Combine(directory, "mysqld.sock")}",
            $"--pid-file={Path.Combine(directory, "mysqld.pid")}",
            $"--tmpdir={directory}",
            "--general-log=1",
            $"--general-log-file={Path.Combine(directory, GeneralLogFileName)}",
            .. File.Exists(initFile) ? [$"--init-file={initFile}"] : Array.Empty<string>(),
            .. SpeedOptions,
            .. _tlsOptions,
        ];
    }

    private static async Task<string> TemplateAsync(string? user, CancellationToken ct)
    {
        await TemplateLock.WaitAsync(ct);
        try
        {
            if (_templateDataDirectory is null)
            {
                var directory = await ServerHost.CreateDirectoryAsync("mariadb-template", user, ct);
                // Nothing runs there; the watchdog only deletes the template when the test process exits.
                _templateWatchdog = Watchdog.Start(directory, Path.Combine(directory, "no.pid"), Signal.Kill);
                var data = Path.Combine(directory, "data");
                await ServerHost.RunAsync(
                    user,
                    [InstallDb, "--no-defaults", "--basedir=/usr", $"--datadir={data}", "--skip-test-db", .. SpeedOptions],
                    ct,
                    directory);
                _templateDataDirectory = data;
            }
            return _templateDataDirectory;
        }
        finally
        {
            TemplateLock.Release();
        }
    }

    private async Task ProbeAsync(int port, CancellationToken ct)
    {
        await using var connection = await OpenAsync(SuperUser, SuperPassword, ct);
    }

    private async Task<MySqlConnection> OpenAsync(string user, string password, CancellationToken ct)
    {
        var connection = new MySqlConnection(ConnectionString(user, password));
        try
        {
            await connection.OpenAsync(ct);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }
}
