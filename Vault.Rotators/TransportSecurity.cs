namespace Vault.Rotators;

/// <summary>How a rotator reaches a target's system: what an admin sees in <c>target show</c>, and what is flagged.</summary>
/// <param name="Mode">The TLS mode in the kind's own words (<c>verify-full</c>, <c>starttls</c>, <c>disable</c>, …).</param>
/// <param name="Warning">
/// Null when passwords travel only over TLS whose certificate is checked against the CA and the host
/// name; otherwise what is weaker about it (plaintext, TLS that can be stripped, no certificate or
/// no name check), in one line.
/// </param>
/// <param name="ChecksCertificate">Whether the system's certificate is checked at all (against the CA bundle and the pin), so that giving a CA bundle or pin means something.</param>
public sealed record TransportSecurity(string Mode, string? Warning, bool ChecksCertificate)
{
    /// <summary>Whether passwords travel only over TLS with the certificate and the host name checked.</summary>
    public bool Verified => Warning is null;
}
