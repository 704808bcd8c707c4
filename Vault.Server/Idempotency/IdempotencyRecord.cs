namespace Vault.Server.Idempotency;

/// <summary>
/// The answer a keyed write gave (keyed by <see cref="IdempotentCall.Id"/>), sealed under the
/// barrier with its fingerprint and time bound into the seal's identity: editing either breaks it.
/// Kept for <see cref="IdempotentWrites.Window"/>, then removed by the reaper.
/// </summary>
public sealed class IdempotencyRecord
{
    /// <summary>An HMAC of the method and the request the answer belongs to.</summary>
    public string Fingerprint { get; set; } = "";

    public long CreatedAtUnixMs { get; set; }

    public int KekVersion { get; set; }

    public byte[] WrappedDataKey { get; set; } = [];

    /// <summary>The answer as JSON, sealed.</summary>
    public byte[] Answer { get; set; } = [];
}
