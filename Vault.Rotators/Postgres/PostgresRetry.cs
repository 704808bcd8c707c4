using Npgsql;

namespace Vault.Rotators.Postgres;

/// <summary>
/// Statements that change one catalog row at the same time as another session (GRANTs on one
/// database, <c>DROP OWNED</c> revoking them) are refused with XX000 "tuple concurrently
/// updated" rather than made to wait, and Npgsql closes the session. Work that is safe to repeat
/// (a transaction that rolled back whole, a drop that checks what is left) runs again.
/// </summary>
internal static class PostgresRetry
{
    /// <summary>How often work refused for a concurrent catalog update is run in all.</summary>
    internal const int ConcurrentUpdateAttempts = 8;

    /// <summary>Runs <paramref name="work"/>, again after a short random pause while it is refused for a concurrent catalog update.</summary>
    internal static async Task OnConcurrentCatalogUpdateAsync(Func<Task> work, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await work().ConfigureAwait(false);
                return;
            }
            catch (Exception ex) when (IsConcurrentCatalogUpdate(ex) && attempt < ConcurrentUpdateAttempts)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(5, 20 * attempt)), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>XX000 "tuple concurrently updated" (also as the cause of a rotator's failure): another session changed the same catalog row first.</summary>
    private static bool IsConcurrentCatalogUpdate(Exception ex) =>
        (ex as PostgresException ?? ex.InnerException as PostgresException) is { SqlState: PostgresErrorCodes.InternalError, MessageText: "tuple concurrently updated" };
}
