using System.Diagnostics.Metrics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Vault.Server.Telemetry.Events;

/// <summary>
/// The webhook's durable spool: one file per event not yet delivered, in
/// <see cref="EventOptions.SpoolDirectory"/>, named <c>NNNNNNNNNNNNNNNN-ID.json</c> so the names sort
/// oldest first. A file is written whole (a temporary file, fsync, rename, fsync of the directory)
/// before <see cref="SecurityEvents.Publish"/> returns, so an event survives a crash or a restart
/// while the receiver is down; <see cref="WebhookDelivery"/> deletes it once the receiver has
/// acknowledged it. Events hold nothing secret, so the spool works while the vault is sealed. At
/// most <see cref="WebhookOptions.MaxSpooled"/> files: beyond that the oldest is dropped.
/// </summary>
public sealed class EventSpool
{
    private const string Suffix = ".json";
    private const string TempSuffix = ".tmp";

    private readonly IOptions<EventOptions> _options;
    private readonly ILogger<EventSpool> _logger;
    private readonly Lock _lock = new();
    private readonly Counter<long> _dropped;
    private SortedSet<string>? _files;
    private long _next;

    public EventSpool(IOptions<EventOptions> options, IMeterFactory meters, ILogger<EventSpool> logger)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _options = options;
        _logger = logger;
        var meter = meters.Create(VaultMetrics.MeterName);
        meter.CreateObservableGauge("vault.events.spooled", () => Count, unit: "{event}",
            description: "Security events waiting in the webhook's spool for delivery (0 without a webhook).");
        _dropped = meter.CreateCounter<long>("vault.events.dropped", unit: "{event}",
            description: "Security events the webhook never got: dropped from a full spool, or not spooled (the disk refused).");
    }

    /// <summary>Whether there is a webhook (and so a spool).</summary>
    public bool Enabled => !string.IsNullOrEmpty(_options.Value.Webhook.Url);

    public string Directory => _options.Value.SpoolDirectory;

    /// <summary>Raised after an event was spooled: the delivery worker looks again.</summary>
    public event Action? Added;

    /// <summary>Events waiting.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _files?.Count ?? 0;
            }
        }
    }

    /// <summary>Creates the directory if needed, clears what a crash left half-written and reads what waits. Idempotent.</summary>
    /// <exception cref="IOException">The directory cannot be made or read.</exception>
    public void Open()
    {
        lock (_lock)
        {
            if (_files is not null)
            {
                return;
            }
            System.IO.Directory.CreateDirectory(Directory);
            foreach (var temp in System.IO.Directory.EnumerateFiles(Directory, "*" + TempSuffix))
            {
                // Never renamed: the event was not yet published when the process died.
                File.Delete(temp);
            }
            var files = new SortedSet<string>(System.IO.Directory.EnumerateFiles(Directory, "*" + Suffix).Select(Path.GetFileName)!, StringComparer.Ordinal);
            _next = files.Count == 0 ? 1 : SequenceOf(files.Max!) + 1;
            _files = files;
        }
    }

    /// <summary>Writes <paramref name="published"/> durably (when there is a webhook). Never throws: a failure is logged and counted.</summary>
    public void Add(SecurityEvent published)
    {
        ArgumentNullException.ThrowIfNull(published);
        if (!Enabled)
        {
            return;
        }
        try
        {
            lock (_lock)
            {
                Open();
                var max = Math.Max(1, _options.Value.Webhook.MaxSpooled);
                while (_files!.Count >= max)
                {
                    var oldest = _files.Min!;
                    File.Delete(Path.Combine(Directory, oldest));
                    _files.Remove(oldest);
                    _dropped.Add(1, new KeyValuePair<string, object?>("reason", "spool_full"));
                    EventLog.SpoolFull(_logger, max, IdOf(oldest));
                }
                var name = string.Create(CultureInfo.InvariantCulture, $"{_next:D16}-{published.Id}{Suffix}");
                var path = Path.Combine(Directory, name);
                var temp = path + TempSuffix;
                using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                {
                    file.Write(published.ToJson());
                    file.Flush(flushToDisk: true);
                }
                File.Move(temp, path);
                Storage.DirectorySync.Flush(Directory);
                _next++;
                _files.Add(name);
            }
            Added?.Invoke();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _dropped.Add(1, new KeyValuePair<string, object?>("reason", "not_spooled"));
            EventLog.NotSpooled(_logger, published.Id, published.Type, ex.Message);
        }
    }

    /// <summary>The oldest event waiting: its id and body; null when none waits.</summary>
    public (string File, string Id, byte[] Body)? Oldest()
    {
        while (true)
        {
            string name;
            lock (_lock)
            {
                if (_files is not { Count: > 0 })
                {
                    return null;
                }
                name = _files.Min!;
            }
            var path = Path.Combine(Directory, name);
            try
            {
                return (name, IdOf(name), File.ReadAllBytes(path));
            }
            catch (FileNotFoundException)
            {
                Forget(name);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Out of the queue, so one bad file does not hold back every later event.
                EventLog.Unreadable(_logger, path, ex.Message);
                TryMove(path, path + ".bad");
                Forget(name);
            }
        }
    }

    /// <summary>Deletes a delivered event's file.</summary>
    public void Remove(string file)
    {
        File.Delete(Path.Combine(Directory, file));
        Forget(file);
    }

    private void Forget(string file)
    {
        lock (_lock)
        {
            _files?.Remove(file);
        }
    }

    private static void TryMove(string from, string to)
    {
        try
        {
            File.Move(from, to, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static long SequenceOf(string file) =>
        long.TryParse(file.AsSpan(0, Math.Max(0, file.IndexOf('-', StringComparison.Ordinal))), NumberStyles.None, CultureInfo.InvariantCulture, out var sequence) ? sequence : 0;

    private static string IdOf(string file)
    {
        var dash = file.IndexOf('-', StringComparison.Ordinal);
        return file[(dash + 1)..^Suffix.Length];
    }
}
