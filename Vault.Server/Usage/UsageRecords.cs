using System.Globalization;

namespace Vault.Server.Usage;

/// <summary>
/// When an item was last used (keyed by <c>kind/key</c>: <c>token/&lt;accessor&gt;</c>,
/// <c>secret_id/&lt;role&gt;/&lt;accessor&gt;</c>, <c>kv/&lt;path&gt;</c>, <c>person/&lt;entity id&gt;</c>,
/// <c>lease/&lt;lease id&gt;</c>), sealed: whoever can write the data file must not be able to make
/// a used credential look unused (and so pruned) or an unused one look used (and so kept).
/// </summary>
public sealed class UsageRecord
{
    public long LastUsedAtUnixMs { get; set; }
    public byte[]? Seal { get; set; }

    internal string Canonical() => LastUsedAtUnixMs.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Since when this vault tracks uses (id <see cref="UsageTracker.SinceId"/> in the system collection).</summary>
public sealed class UsageSinceRecord
{
    public long SinceUnixMs { get; set; }
    public byte[]? Seal { get; set; }

    internal string Canonical() => SinceUnixMs.ToString(CultureInfo.InvariantCulture);
}
