using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Npgsql;
using Vault.Rotators.Tls;

namespace Vault.Rotators.Postgres;

/// <summary>
/// Admin sessions kept open between calls, one small pool per server, database and admin
/// credential, so that a rotation pays for one login (the check that the new password works)
/// rather than two, and the target does not fork a backend for every admin statement.
/// <para>
/// A pool is keyed by its whole connection string, admin password included (as a SHA-256, not
/// the string): a changed admin password gets a new pool and is tried afresh, while sessions
/// authenticated before the change stay usable until they idle out, as any open session does.
/// Sessions idle out after <see cref="IdleSeconds"/>; a pool unused for <see cref="Unused"/> is
/// disposed, and with it the driver's copy of the password. Logins that prove a password (the
/// rotation's test step, drift checks) never come from here.
/// </para>
/// </summary>
internal sealed class PostgresAdminSessions : IDisposable
{
    public const int IdleSeconds = 30;
    public static readonly TimeSpan Unused = TimeSpan.FromMinutes(2);
    private const int MaxSessions = 4;
    private readonly ConcurrentDictionary<string, Pool> _pools = new(StringComparer.Ordinal);
    // Sweeps on its own too, so an admin password does not linger in an idle pool until the next
    // admin call (which may be a schedule days away).
    private readonly Timer _sweeper;
    private long _nextSweep;

    public PostgresAdminSessions() => _sweeper = new Timer(_ => SweepQuietly(), null, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30));

    /// <summary>The pooled data source for these settings; the caller must not dispose it.</summary>
    /// <param name="extraKey">What else the data source is built with (the TLS mode, the certificate check's CA bundle and pin): part of the pool's key.</param>
    /// <returns>
    /// The pool's data source, the certificate check it was built with (what a refused handshake on
    /// it found), and the pool's catalog gate: work that creates or drops roles holds it, one at a
    /// time per server and admin (see <see cref="PostgresRotator"/>).
    /// </returns>
    public (NpgsqlDataSource Source, CertificateCheck? Check, SemaphoreSlim CatalogGate) For(NpgsqlConnectionStringBuilder settings, string extraKey, Func<NpgsqlConnectionStringBuilder, (NpgsqlDataSource, CertificateCheck?)> build)
    {
        settings.Pooling = true;
        settings.MinPoolSize = 0;
        settings.MaxPoolSize = MaxSessions;
        settings.ConnectionIdleLifetime = IdleSeconds;
        settings.ConnectionPruningInterval = 5;
        Sweep();
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(settings.ConnectionString + "\0" + extraKey)));
        var pool = _pools.GetOrAdd(key, _ => new Pool(new Lazy<(NpgsqlDataSource, CertificateCheck?)>(() => build(settings))));
        pool.LastUsed = Environment.TickCount64;
        var (source, check) = pool.Source.Value;
        return (source, check, pool.CatalogGate);
    }

    public void Dispose()
    {
        _sweeper.Dispose();
        foreach (var key in _pools.Keys)
        {
            if (_pools.TryRemove(key, out var pool) && pool.Source.IsValueCreated)
            {
                pool.Source.Value.Item1.Dispose();
            }
        }
    }

    /// <summary>For the timer: an exception escaping a timer callback would end the process.</summary>
    private void SweepQuietly()
    {
        try
        {
            Sweep();
        }
        catch (Exception ex) when (ex is ObjectDisposedException or InvalidOperationException or NpgsqlException)
        {
            // Best effort: the next sweep, or the next admin call, tries again.
        }
    }

    private void Sweep()
    {
        var now = Environment.TickCount64;
        var next = Interlocked.Read(ref _nextSweep);
        if (now < next || Interlocked.CompareExchange(ref _nextSweep, now + 10_000, next) != next)
        {
            return;
        }
        foreach (var (key, pool) in _pools)
        {
            if (now - pool.LastUsed > Unused.TotalMilliseconds && _pools.TryRemove(key, out var removed) && removed.Source.IsValueCreated)
            {
                // Idle sessions close now; one still in use (unlikely after minutes unused) closes when returned.
                removed.Source.Value.Item1.Dispose();
            }
        }
    }

    private sealed class Pool(Lazy<(NpgsqlDataSource, CertificateCheck?)> source)
    {
        public Lazy<(NpgsqlDataSource, CertificateCheck?)> Source { get; } = source;

        // Never disposed: a pool swept while a call still waits on its gate must not fail that call.
        public SemaphoreSlim CatalogGate { get; } = new(1, 1);

        // Set at creation, so a sweep racing the first use never takes a new pool for an idle one.
        public long LastUsed { get; set; } = Environment.TickCount64;
    }
}
