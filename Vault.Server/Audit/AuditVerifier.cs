using System.Text.Json;
using Vault.Server.Auth;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Audit;

/// <summary>
/// Walks the audit chain in a directory against the store's anchor and reports the first entry
/// that is wrong. One implementation for the running vault (<see cref="AuditLog.Verify"/>) and for
/// a stopped vault's data directory (<see cref="OfflineAuditVerify"/>); it only reads.
/// </summary>
/// <param name="directory">The audit directory (<c>DATA_DIR/audit</c>).</param>
/// <param name="hmac">The keyring's HMAC (<see cref="Crypto.SecurityBarrier.Hmac"/>): checks the
/// entries' hashes and the anchor's seal.</param>
internal sealed class AuditVerifier(string directory, Func<string, byte[], byte[]> hmac)
{
    /// <summary>
    /// Walks the kept chain from where the anchor says it begins. The log must also reach the
    /// entry the anchor records, so a log cut short or deleted (also while the vault was stopped)
    /// is reported with what is missing; acknowledged gaps are accepted.
    /// </summary>
    /// <param name="anchor">The store's anchor as read, seal unchecked; null when none was ever written.</param>
    /// <param name="written">For the running vault: every entry up to this one was completely written
    /// and fsync'd before the walk began, so a line after them that does not parse may be a group
    /// still being written. Null for a stopped vault, whose newest file may instead end in an
    /// unfinished line a crash left (never acknowledged; start-up cuts it off).</param>
    public AuditVerification Verify(AuditAnchorRecord? anchor, ulong? written)
    {
        if (anchor is not null)
        {
            try
            {
                RecordSeal.Verify(hmac, Collections.System, AuditAnchorRecord.Id, anchor.Canonical(), anchor.Seal);
            }
            catch (DataIntegrityException)
            {
                return AuditVerification.Broken(0, "", 0, "the audit anchor in the store failed its integrity check (edited outside the vault)");
            }
        }
        var expectedSeq = anchor?.StartSeq ?? 1;
        var prev = anchor?.StartPrevHash ?? "";
        ulong checkedCount = 0;
        var lastName = "";
        var lastLine = 0UL;
        var files = AuditFiles.Kept(directory, anchor?.StartFile ?? "");
        for (var f = 0; f < files.Count; f++)
        {
            var file = files[f];
            var lineNumber = 0UL;
            var name = Path.GetFileName(file);
            lastName = name;
            lastLine = 0;
            using var lines = File.ReadLines(file).GetEnumerator();
            var more = lines.MoveNext();
            while (more)
            {
                var line = lines.Current;
                more = lines.MoveNext();
                lineNumber++;
                AuditLine? entry;
                try
                {
                    entry = JsonSerializer.Deserialize(line, AuditJson.Default.AuditLine);
                }
                catch (JsonException)
                {
                    if (written is { } complete && expectedSeq > complete)
                    {
                        // Past every entry known to be complete: a group still being written.
                        return AuditVerification.Intact(checkedCount);
                    }
                    if (written is null && !more && f == files.Count - 1 && !EndsWithNewline(file))
                    {
                        // A crash in the middle of a group: never acknowledged. Whether entries
                        // the anchor records are missing is decided below, as for a cut log.
                        break;
                    }
                    return AuditVerification.Broken(checkedCount, name, lineNumber, "not a valid entry (edited or truncated)");
                }
                if (entry?.Hash is null)
                {
                    return AuditVerification.Broken(checkedCount, name, lineNumber, "not a valid entry (no hash)");
                }
                if (entry.Seq != expectedSeq && anchor?.Gaps.Find(g => g.FirstMissing == expectedSeq && g.LastMissing + 1 == entry.Seq) is { } gap)
                {
                    // Entries an operator acknowledged as lost: the chain goes on from the last of them.
                    expectedSeq = entry.Seq;
                    prev = gap.LastHash;
                }
                if (entry.Seq != expectedSeq)
                {
                    return AuditVerification.Broken(checkedCount, name, lineNumber,
                        entry.Seq > expectedSeq ? $"entry {expectedSeq} is missing (found {entry.Seq}): deleted or reordered" : $"entry {entry.Seq} appears again or out of order (expected {expectedSeq})");
                }
                if (entry.PrevHash != prev)
                {
                    return AuditVerification.Broken(checkedCount, name, lineNumber, "does not chain to the entry before it");
                }
                if (!IsGenuine(entry, line))
                {
                    return AuditVerification.Broken(checkedCount, name, lineNumber, "hash does not match its content: edited or forged");
                }
                if (anchor is not null && entry.Seq == anchor.Seq && entry.Hash != anchor.Hash)
                {
                    return AuditVerification.Broken(checkedCount, name, lineNumber, $"entry {entry.Seq} is not the one the store's anchor records: the log was replaced");
                }
                prev = entry.Hash;
                expectedSeq++;
                checkedCount++;
                lastLine = lineNumber;
            }
        }
        var last = expectedSeq - 1;
        if (anchor is not null && last < anchor.Seq
            && anchor.Gaps.Find(g => g.FirstMissing == last + 1 && g.LastMissing == anchor.Seq) is null)
        {
            // The line where the first missing entry should be, when its file is still there.
            return AuditVerification.Broken(checkedCount, anchor.File, anchor.File == lastName ? lastLine + 1 : 0,
                $"log ends at entry {last} but the store's anchor records entry {anchor.Seq} in {anchor.File}: entries {last + 1}–{anchor.Seq} are missing (cut or deleted)");
        }
        if (written is { } all && last < all)
        {
            return AuditVerification.Broken(checkedCount, lastName, lastLine + 1,
                $"log ends at entry {last} but {all} were written: truncated");
        }
        return AuditVerification.Intact(checkedCount);
    }

    /// <summary>
    /// Whether <paramref name="line"/> is an entry the vault wrote: its hash is the HMAC of the
    /// entry without it, and the line is exactly the entry's serialisation (nothing added or reformatted).
    /// </summary>
    public bool IsGenuine(AuditLine entry, string line) =>
        ComputeHash(entry) == entry.Hash && JsonSerializer.Serialize(entry, AuditJson.Default.AuditLine) == line;

    private string ComputeHash(AuditLine entry)
    {
        var hash = entry.Hash;
        entry.Hash = null;
        try
        {
            var canonical = JsonSerializer.SerializeToUtf8Bytes(entry, AuditJson.Default.AuditLine);
            return Convert.ToHexStringLower(hmac(AuditLog.HmacPurpose, canonical));
        }
        finally
        {
            entry.Hash = hash;
        }
    }

    private static bool EndsWithNewline(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        if (stream.Length == 0)
        {
            return true;
        }
        stream.Position = stream.Length - 1;
        return stream.ReadByte() == '\n';
    }
}
