using Npgsql;
using NpgsqlTypes;

namespace Vault.Server.Storage.Postgres;

/// <summary>Where a node's store reads its current term from (the leadership loop keeps it).</summary>
public interface ITermSource
{
    /// <summary>This node's live term as the active one, or null while it is a standby.</summary>
    Leadership? Term { get; }
}

/// <summary>A node's term as the active one: its epoch is the fencing token every write it makes carries.</summary>
public sealed record Leadership(string Holder, string Address, long Epoch, DateTimeOffset ExpiresAt);

/// <summary>
/// Which node of a group sharing one PostgreSQL database is active: one row (holder, address,
/// epoch, expiry) that the active renews; a standby takes it over, with the next epoch, once it
/// lapses. Expiry is read on the database's clock, so nodes' clocks need not agree.
/// <para>
/// <b>Fencing.</b> Every write transaction of the active calls <see cref="Fence"/>: it reads
/// the row with its epoch <c>FOR SHARE</c>, so the write is refused once the lease lapsed or moved,
/// and a takeover (an update of that row) waits until every write that passed the fence has
/// committed or rolled back. So no write of a deposed node lands after its successor took over —
/// and so none after the successor's first write. A node paused in the middle of a write (SIGSTOP,
/// a long GC, a partition) holds the row's share lock: the database ends its session after
/// <c>idle_in_transaction_session_timeout</c> (<see cref="SessionOptions"/>; the nodes' connections
/// set it below the lease's length), which rolls that write back; a takeover waits at most its
/// <c>lock_timeout</c> before trying again later.
/// </para>
/// </summary>
/// <param name="database">The shared database (its connections carry <see cref="SessionOptions"/>).</param>
/// <param name="holder">This node's id: unique in the group, stable across its restarts.</param>
/// <param name="address">Where this node serves, for standbys to forward writes to.</param>
/// <param name="ttl">How long a term lasts unless renewed.</param>
public sealed class LeaderLease(NpgsqlDataSource database, string holder, string address, TimeSpan ttl)
{
    /// <summary>
    /// The connection-string <c>Options</c> every node's connections to the shared database use:
    /// a session left idle inside a transaction (its node paused) is ended after <paramref name="idleInTransaction"/>.
    /// </summary>
    public static string SessionOptions(TimeSpan idleInTransaction) =>
        $"-c idle_in_transaction_session_timeout={(long)idleInTransaction.TotalMilliseconds}";

    public string Holder => holder;

    /// <summary>
    /// Takes the lease if nobody holds it or the holder's term lapsed (this node's own included:
    /// a term that lapsed is over, and the next one has a new epoch).
    /// </summary>
    /// <returns>The new term, or null while another node's term runs (or a takeover had to wait too long for a write in flight).</returns>
    public async Task<Leadership?> TryAcquireAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var wait = new NpgsqlCommand($"SET LOCAL lock_timeout = {(long)ttl.TotalMilliseconds}", connection, transaction))
        {
            await wait.ExecuteNonQueryAsync(cancellationToken);
        }
        await using var command = new NpgsqlCommand("""
            INSERT INTO vault_leader AS l (singleton, holder, address, epoch, expires_at)
            VALUES (true, @holder, @address, 1, clock_timestamp() + @ttl)
            ON CONFLICT (singleton) DO UPDATE
                SET holder = excluded.holder, address = excluded.address, epoch = l.epoch + 1, expires_at = clock_timestamp() + @ttl
                WHERE l.expires_at <= clock_timestamp()
            RETURNING epoch, expires_at
            """, connection, transaction);
        Bind(command);
        try
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken))
            {
                return null;
            }
            var term = new Leadership(holder, address, reader.GetInt64(0), reader.GetFieldValue<DateTimeOffset>(1));
            await reader.CloseAsync();
            await transaction.CommitAsync(cancellationToken);
            return term;
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.LockNotAvailable)
        {
            // A write of the old term still holds the row: try again on the next round.
            return null;
        }
    }

    /// <summary>Extends <paramref name="term"/> if it is still this node's and has not lapsed.</summary>
    /// <returns>The extended term, or null: it is over (lapsed, or taken over), and this node must step down.</returns>
    public async Task<Leadership?> RenewAsync(Leadership term, CancellationToken cancellationToken)
    {
        await using var command = database.CreateCommand("""
            UPDATE vault_leader SET expires_at = clock_timestamp() + @ttl
            WHERE holder = @holder AND epoch = @epoch AND expires_at > clock_timestamp()
            RETURNING expires_at
            """);
        Bind(command);
        command.Parameters.AddWithValue("epoch", term.Epoch);
        var expires = await command.ExecuteScalarAsync(cancellationToken);
        return expires is DateTime or DateTimeOffset ? term with { ExpiresAt = ToOffset(expires) } : null;
    }

    /// <summary>Ends <paramref name="term"/> now (a clean shutdown), so a standby need not wait for it to lapse.</summary>
    public async Task ReleaseAsync(Leadership term, CancellationToken cancellationToken)
    {
        await using var command = database.CreateCommand(
            "UPDATE vault_leader SET expires_at = clock_timestamp() WHERE holder = @holder AND epoch = @epoch AND expires_at > clock_timestamp()");
        Bind(command);
        command.Parameters.AddWithValue("epoch", term.Epoch);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Who holds the lease (live or lapsed), or null if nobody ever did.</summary>
    public async Task<(Leadership Term, bool Live)?> CurrentAsync(CancellationToken cancellationToken)
    {
        await using var command = database.CreateCommand("SELECT holder, address, epoch, expires_at, expires_at > clock_timestamp() FROM vault_leader");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? (new Leadership(reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetFieldValue<DateTimeOffset>(3)), reader.GetBoolean(4))
            : null;
    }

    /// <summary>
    /// Inside a write transaction of the active node (on the store's writer thread): refuses the
    /// write unless <paramref name="term"/> is still the live one, and holds off any takeover until
    /// the transaction ends.
    /// </summary>
    /// <exception cref="FencedException">The term is over: nothing of the transaction may commit.</exception>
    public static void Fence(NpgsqlConnection connection, NpgsqlTransaction transaction, Leadership term)
    {
        using var command = FenceCommand(connection, transaction, term);
        if (command.ExecuteScalar() is null)
        {
            throw Fenced(term);
        }
    }

    private static NpgsqlCommand FenceCommand(NpgsqlConnection connection, NpgsqlTransaction transaction, Leadership term)
    {
        var command = new NpgsqlCommand(
            "SELECT 1 FROM vault_leader WHERE holder = @holder AND epoch = @epoch AND expires_at > clock_timestamp() FOR SHARE", connection, transaction);
        command.Parameters.AddWithValue("holder", term.Holder);
        command.Parameters.AddWithValue("epoch", term.Epoch);
        return command;
    }

    private static FencedException Fenced(Leadership term) =>
        new($"this node's term (epoch {term.Epoch}) is over: another node is active, or will be; the write was not made");

    private void Bind(NpgsqlCommand command)
    {
        command.Parameters.AddWithValue("holder", holder);
        command.Parameters.AddWithValue("address", address);
        command.Parameters.Add(new NpgsqlParameter("ttl", NpgsqlDbType.Interval) { Value = ttl });
    }

    private static DateTimeOffset ToOffset(object value) => value switch
    {
        DateTimeOffset offset => offset,
        DateTime time => new DateTimeOffset(DateTime.SpecifyKind(time, DateTimeKind.Utc)),
        _ => throw new InvalidCastException(value.GetType().Name),
    };
}
