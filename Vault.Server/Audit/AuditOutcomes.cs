namespace Vault.Server.Audit;

/// <summary>The result of walking the chain.</summary>
public sealed record AuditVerification(bool Ok, ulong EntriesChecked, string File, ulong Line, string Reason)
{
    public static AuditVerification Intact(ulong count) => new(true, count, "", 0, "");

    public static AuditVerification Broken(ulong count, string file, ulong line, string reason) => new(false, count, file, line, reason);
}

/// <summary>The audit entry could not be written, so the request is refused (UNAVAILABLE).</summary>
public sealed class AuditUnavailableException(string message) : VaultException(message);

/// <summary>Entries the store's anchor records that the log no longer holds.</summary>
public sealed record MissingEntries(ulong FirstMissing, ulong LastMissing, string LastHash, string File)
{
    public string Describe() =>
        $"the audit log is missing entries {FirstMissing}–{LastMissing} (the store's anchor records entry {LastMissing} in {File}): it was cut short or deleted; "
        + $"find out why, then acknowledge with `vaultctl audit acknowledge-gap --last-missing {LastMissing}`";
}
