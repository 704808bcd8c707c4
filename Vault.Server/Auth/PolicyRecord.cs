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
        $"{UpdatedAtUnixMs}\n" + string.Join('\n', Rules.Select(r => r.Path + "=" + string.Join(',', r.Capabilities)));
}

/// <summary>One path glob and the capability names it grants.</summary>
public sealed class PolicyRuleRecord
{
    public string Path { get; set; } = "";
    public List<string> Capabilities { get; set; } = [];
}
