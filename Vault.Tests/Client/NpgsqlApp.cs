using Npgsql;
using Vault.Client.Npgsql;
using Vault.Tests.Rotation;

namespace Vault.Tests.Client;

/// <summary>The application the Npgsql data-source tests run: a data source without pooling, and a loop of queries.</summary>
internal static class NpgsqlApp
{
    public static NpgsqlDataSourceBuilder Builder(TargetSystems systems) => new(new NpgsqlConnectionStringBuilder
    {
        Host = systems.PostgresServer.Host,
        Port = systems.PostgresServer.Port,
        Database = systems.PostgresServer.Database,
        Pooling = false,
        // Every query is a fresh login (a forked backend and SCRAM); on a busy 2-core CI box one
        // took over 5 s. A refused password fails at once whatever this is, so the test still
        // sees every credential failure.
        Timeout = 15,
    }.ConnectionString);

    /// <summary>What an application's request loop waits between two queries.</summary>
    public static readonly TimeSpan PauseBetweenQueries = TimeSpan.FromMilliseconds(20);

    /// <summary>An application's request loop: one query per iteration, each on a new physical connection.</summary>
    public sealed class QueryLoop : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly List<string> _failures = [];
        private readonly HashSet<string> _users = new(StringComparer.Ordinal);
        private Task _loop = Task.CompletedTask;
        private int _queries;
        private long _lastSuccessTicks;

        public static QueryLoop Start(VaultNpgsqlDataSource dataSource)
        {
            var loop = new QueryLoop();
            loop._loop = Task.Run(() => loop.RunAsync(dataSource));
            return loop;
        }

        public async Task<Run> StopAsync()
        {
            await _stop.CancelAsync();
            await _loop;
            return new Run(_queries, _users, _failures);
        }

        /// <summary>Waits (at most 30 s) for a query that started after <paramref name="moment"/> to succeed.</summary>
        public async Task WaitForASuccessAfterAsync(DateTimeOffset moment)
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (Interlocked.Read(ref _lastSuccessTicks) <= moment.UtcTicks)
            {
                Assert.True(DateTime.UtcNow < deadline, $"no query succeeded after {moment:O} ({_failures.Count} failed)");
                await Task.Delay(50);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _loop;
            _stop.Dispose();
        }

        private async Task RunAsync(VaultNpgsqlDataSource dataSource)
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    var started = DateTimeOffset.UtcNow;
                    await using var command = dataSource.CreateCommand("SELECT current_user");
                    var user = (string)(await command.ExecuteScalarAsync())!;
                    _users.Add(user);
                    _queries++;
                    Interlocked.Exchange(ref _lastSuccessTicks, started.UtcTicks);
                }
                catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
                {
                    _failures.Add($"{DateTime.UtcNow:HH:mm:ss.fff} {ex.GetType().Name}: {ex.Message}");
                }
                // A busy application, not a benchmark: still dozens of logins a second,
                // but not a core's worth of forked backends and SCRAM for the whole test, which on
                // a 2-core box slowed the renewals and switches the test is waiting for.
                await Task.Delay(PauseBetweenQueries);
            }
        }
    }

    public sealed record Run(int Queries, HashSet<string> Users, List<string> Failures)
    {
        /// <param name="context">What else to show if queries failed (e.g. the client's log).</param>
        public void AssertNoFailure(Func<string>? context = null) =>
            Assert.True(Failures.Count == 0, $"{Failures.Count} of {Queries + Failures.Count} queries failed: {string.Join("; ", Failures.Take(5))}{(Failures.Count > 0 && context is not null ? "\n" + context() : "")}");
    }
}
