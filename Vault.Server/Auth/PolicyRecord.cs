using Vault.Server.Crypto;

namespace Vault.Server.Auth;

/// <summary>A named policy as stored: its rules, in order.</summary>
public sealed class PolicyRecord
{
    public List<PolicyRuleRecord> Rules { get; set; } = [];
    public long UpdatedAtUnixMs { get; set; }
    /// <summary>HMAC over the rules (see <see cref="RecordSeal"/>).</summary>
    public byte[]? Seal { get; set; }

    internal string Canonical() =>
        $"{UpdatedAtUnixMs}\n" + string.Join('\n', Rules.Select(r => r.Path + "=" + string.Join(',', r.Capabilities)
            // Only when set, so policies sealed before step-up existed still verify.
            + (r.MfaWithinSeconds > 0 ? $"@mfa{r.MfaWithinSeconds}" : "")));
}

/// <summary>One path glob and the capability names it grants.</summary>
public sealed class PolicyRuleRecord
{
    public string Path { get; set; } = "";
    public List<string> Capabilities { get; set; } = [];
    /// <summary>Step-up: what this rule grants needs an MFA code validated for the token within this many seconds; 0 for none.</summary>
    public uint MfaWithinSeconds { get; set; }
}
