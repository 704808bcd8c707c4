namespace Vault.Server.Usage;

/// <summary>Last-use tracking, bound from "Vault:Usage".</summary>
public sealed class UsageOptions
{
    public const string Section = "Vault:Usage";

    /// <summary>
    /// A use is recorded at most once per this period per item (so a token used by every request
    /// costs one dictionary read per request, and one stored write per period): the report knows a
    /// last use to within it, plus the reaper interval that persists it.
    /// </summary>
    public TimeSpan Precision { get; set; } = TimeSpan.FromMinutes(5);
}
