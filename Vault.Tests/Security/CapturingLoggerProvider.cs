using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Vault.Tests.Security;

/// <summary>
/// Collects every log line (message, structured values, exception with its stack) in memory, so a
/// test can grep what the server would have written to its log.
/// </summary>
public sealed class CapturingLoggerProvider : ILoggerProvider
{
    public ConcurrentQueue<string> Lines { get; } = new();

    /// <summary>Lines start with the UTC time of day (to line them up with what a test saw), e.g. "12:34:56.789 Information …".</summary>
    public bool Timestamps { get; init; }

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, Lines, Timestamps);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, ConcurrentQueue<string> lines, bool timestamps) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var line = new StringBuilder($"{logLevel} {category}[{eventId.Id}] {formatter(state, exception)}");
            if (timestamps)
            {
                line.Insert(0, $"{DateTime.UtcNow:HH:mm:ss.fff} ");
            }
            // The structured values too: a sink that stores them (JSON, OpenTelemetry) would keep
            // what the message template leaves out.
            if (state is IEnumerable<KeyValuePair<string, object?>> values)
            {
                foreach (var (key, value) in values)
                {
                    line.Append(" | ").Append(key).Append('=').Append(value);
                }
            }
            if (exception is not null)
            {
                line.Append('\n').Append(exception);
            }
            lines.Enqueue(line.ToString());
        }
    }
}
