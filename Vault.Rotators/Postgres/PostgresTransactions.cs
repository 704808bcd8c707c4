using Npgsql;

namespace Vault.Rotators.Postgres;

/// <summary>Transactions on an admin session that PostgreSQL may refuse for a concurrent catalog update.</summary>
internal static class PostgresTransactions
{
    /// <summary>How often a transaction refused for a concurrent catalog update is run again.</summary>
    internal const int ConcurrentUpdateAttempts = 8;

    /// <summary>
    /// Runs <paramref name="work"/> in one transaction on a session from <paramref name="open"/> and commits it.
    /// Statements that change one catalog row at the same time as another session (GRANTs on one
    /// database, <c>DROP OWNED</c> revoking them) are refused with XX000 "tuple concurrently
    /// updated" rather than waiting; the transaction has then rolled back whole, so it is run
    /// again after a short random pause, up to <see cref="ConcurrentUpdateAttempts"/> times.
    /// </summary>
    internal static async Task InTransactionAsync(Func<CancellationToken, Task<NpgsqlConnection>> open, Func<NpgsqlConnection, Task> work, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            // A session of its own each time: Npgsql closes the connection after this error.
            var session = await open(cancellationToken).ConfigureAwait(false);
            await using (session.ConfigureAwait(false))
            {
                try
                {
                    var transaction = await session.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                    await using var transactionScope = transaction.ConfigureAwait(false);
                    await work(session).ConfigureAwait(false);
                    await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                    return;
                }
                catch (PostgresException ex) when (IsConcurrentCatalogUpdate(ex) && attempt < ConcurrentUpdateAttempts)
                {
                    // Rolled back whole: run again below, after a short random pause.
                }
            }
            await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(5, 20 * attempt)), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>XX000 "tuple concurrently updated": another session changed the same catalog row first.</summary>
    internal static bool IsConcurrentCatalogUpdate(PostgresException ex) =>
        ex.SqlState == PostgresErrorCodes.InternalError && ex.MessageText == "tuple concurrently updated";
}
