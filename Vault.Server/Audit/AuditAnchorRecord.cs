using System.Globalization;
using System.Text;

namespace Vault.Server.Audit;

/// <summary>
/// Where the audit chain stands, kept in the store (not in the log it vouches for): the newest
/// entry written (sequence number, hash, file), where the kept chain begins, and the gaps an
/// operator has acknowledged. Updated in the same commit as every change's entry and after every
/// other group of entries, so a log cut short or deleted is noticed, also after a restart.
/// Sealed with a keyring HMAC like the authorisation records.
/// </summary>
public sealed class AuditAnchorRecord
{
    public const string Id = "audit-anchor";

    public ulong Seq { get; set; }
    public string Hash { get; set; } = "";
    public string File { get; set; } = "";
    /// <summary>The first entry of the kept chain (1 until older files are archived) and the hash it chains to.</summary>
    public ulong StartSeq { get; set; } = 1;
    public string StartPrevHash { get; set; } = "";
    /// <summary>The file the kept chain begins in; files named before it are archived (empty until the first archive).</summary>
    public string StartFile { get; set; } = "";
    public List<AuditGapRecord> Gaps { get; set; } = [];
    public byte[]? Seal { get; set; }

    public AuditAnchorRecord Copy() => new()
    {
        Seq = Seq,
        Hash = Hash,
        File = File,
        StartSeq = StartSeq,
        StartPrevHash = StartPrevHash,
        StartFile = StartFile,
        Gaps = [.. Gaps],
    };

    /// <summary>Every field but the seal, in a fixed order.</summary>
    public string Canonical()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{Seq}\n{Hash}\n{File}\n{StartSeq}\n{StartPrevHash}");
        if (StartFile.Length > 0)
        {
            // Only once set, so anchors sealed before archiving existed still verify.
            text.Append(CultureInfo.InvariantCulture, $"\nstart-file {StartFile}");
        }
        foreach (var gap in Gaps)
        {
            text.Append(CultureInfo.InvariantCulture, $"\ngap {gap.FirstMissing} {gap.LastMissing} {gap.LastHash} {gap.AcknowledgedAtUnixMs} {gap.AcknowledgedBy}");
        }
        return text.ToString();
    }
}

/// <summary>Entries an operator acknowledged as lost; the chain goes on from the hash of the last of them.</summary>
public sealed class AuditGapRecord
{
    public ulong FirstMissing { get; set; }
    public ulong LastMissing { get; set; }
    public string LastHash { get; set; } = "";
    public long AcknowledgedAtUnixMs { get; set; }
    public string AcknowledgedBy { get; set; } = "";
}
