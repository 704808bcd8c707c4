using System.Security.Cryptography;
using System.Text.Json;

namespace Vault.Server.Telemetry.Events;

/// <summary>
/// One security event: a unique random id, its type (<see cref="SecurityEventTypes"/>), when it
/// happened on the vault's clock, and a small flat map of what it is about (a target's name, a
/// lease id, a reason already safe for the history and the log). Never a password, token, secret
/// id or secret value: events leave the vault (webhook bodies, the spool on disk, watchers).
/// </summary>
public sealed record SecurityEvent(string Id, string Type, DateTimeOffset Time, IReadOnlyDictionary<string, string> Attributes)
{
    /// <summary>A new event of <paramref name="type"/> at <paramref name="time"/>, with a fresh id.</summary>
    public static SecurityEvent Create(string type, DateTimeOffset time, IReadOnlyDictionary<string, string> attributes) =>
        new(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), type, time, attributes);

    /// <summary>
    /// The event as the webhook's JSON body: <c>{"id":…,"type":…,"time":"…Z","attributes":{…}}</c>,
    /// the time in UTC with milliseconds. The same bytes are spooled and signed.
    /// </summary>
    public byte[] ToJson()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("id", Id);
            json.WriteString("type", Type);
            json.WriteString("time", Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
            json.WriteStartObject("attributes");
            foreach (var (key, value) in Attributes.OrderBy(a => a.Key, StringComparer.Ordinal))
            {
                json.WriteString(key, value);
            }
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }
}

/// <summary>Every event type the vault publishes (as sent; a watcher filters on a prefix such as <c>rotation.</c>).</summary>
public static class SecurityEventTypes
{
    public const string RotationSucceeded = "rotation.succeeded";
    public const string RotationFailed = "rotation.failed";
    /// <summary>An interrupted rotation was settled on start-up or at the next run (the pending or the current password won).</summary>
    public const string RotationRecovered = "rotation.recovered";
    public const string RotationNeedsAttention = "rotation.needs_attention";
    public const string RotationDiscarded = "rotation.discarded";
    /// <summary>The drift check found the current password refused: changed behind the vault's back.</summary>
    public const string RotationDrifted = "rotation.drifted";
    public const string RotationDriftCleared = "rotation.drift_cleared";
    public const string LeaseRevocationFailed = "lease.revocation_failed";
    public const string LeaseIrrevocable = "lease.irrevocable";
    public const string AuditFailed = "audit.failed";
    public const string AuditRecovered = "audit.recovered";
    public const string StoreFailed = "store.failed";
    public const string StoreRecovered = "store.recovered";
    public const string Sealed = "seal.sealed";
    public const string Unsealed = "seal.unsealed";
    public const string BreakGlass = "access.break_glass";
    public const string RequestApproved = "access.request_approved";
    public const string RequestDenied = "access.request_denied";
    public const string RequestRevoked = "access.request_revoked";

    /// <summary>The type of a rotation history outcome (<c>needs-attention</c> → <c>rotation.needs_attention</c>).</summary>
    public static string OfRotation(string outcome) => "rotation." + outcome.Replace('-', '_');
}
