using System.Text.Json.Serialization;

namespace Vault.Server.Audit;

/// <summary>One line of the audit file. Property order is the canonical order the HMAC covers.</summary>
public sealed class AuditLine
{
    [JsonPropertyName("seq")] public ulong Seq { get; set; }
    [JsonPropertyName("time")] public DateTimeOffset Time { get; set; }
    [JsonPropertyName("request_id")] public string RequestId { get; set; } = "";
    [JsonPropertyName("accessor")] public string Accessor { get; set; } = "";
    /// <summary>The person the caller's token acts for (absent for programs, and in entries written before entities existed).</summary>
    [JsonPropertyName("entity")] public string? Entity { get; set; }
    [JsonPropertyName("entity_id")] public string? EntityId { get; set; }
    [JsonPropertyName("rpc")] public string Rpc { get; set; } = "";
    [JsonPropertyName("path")] public string Path { get; set; } = "";
    [JsonPropertyName("outcome")] public string Outcome { get; set; } = "";
    [JsonPropertyName("error_code")] public string ErrorCode { get; set; } = "";
    [JsonPropertyName("credential_hmac")] public string CredentialHmac { get; set; } = "";
    /// <summary>A security event an alert can match on (e.g. <c>user-locked</c>), beside the request it came from.</summary>
    [JsonPropertyName("event")] public string? Event { get; set; }
    [JsonPropertyName("prev_hash")] public string PrevHash { get; set; } = "";
    [JsonPropertyName("hash")] public string? Hash { get; set; }
}

/// <summary>What the interceptor knows about a finished request.</summary>
/// <param name="CredentialHmac">HMAC of the credential the caller presented (bearer token, or the
/// secret id of a login), valid or not; empty when none was presented.</param>
/// <param name="Entity">The person the caller acts for (its name), or null.</param>
/// <param name="EntityId">That entity's id.</param>
/// <param name="Event">A security event the request raised, or null.</param>
public sealed record AuditEvent(string RequestId, string Accessor, string Rpc, string Path, string Outcome, string ErrorCode, string CredentialHmac,
    string? Entity = null, string? EntityId = null, string? Event = null);

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AuditLine))]
internal sealed partial class AuditJson : JsonSerializerContext;
