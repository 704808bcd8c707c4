using System.Globalization;
using Vault.Server.Crypto;

namespace Vault.Server.Rotation;

/// <summary>
/// A rotation target as stored (keyed by name): its configuration, sealed with an HMAC so whoever
/// can write the data file cannot point the admin credential at another host; its passwords,
/// each encrypted under the barrier; and the rotation state machine's progress.
/// </summary>
public sealed class TargetRecord
{
    // ---- configuration (covered by Seal) ----
    public string Kind { get; set; } = "";
    public string Host { get; set; } = "";
    public int Port { get; set; }
    public string Database { get; set; } = "";
    public Dictionary<string, string> Options { get; set; } = [];
    /// <summary>PEM CA certificates the system's certificate must chain to; empty for the machine's.</summary>
    public string CaCertificates { get; set; } = "";
    /// <summary>Optional <c>sha256:</c> pin of the system's certificate key.</summary>
    public string CertificatePin { get; set; } = "";
    /// <summary>
    /// Registered since verified TLS became the default: a missing TLS option means the rotator's
    /// (verified) default. Unset in records from before, which keep the mode they had (<see cref="TargetTrust"/>).
    /// </summary>
    public bool VerifiedTlsByDefault { get; set; }
    /// <summary>Account 0 and, under alternating users, account 1.</summary>
    public List<string> Accounts { get; set; } = [];
    public string AdminSecret { get; set; } = "";
    public bool ManagesAdminSecret { get; set; }
    public int PasswordLength { get; set; }
    public string PasswordAlphabet { get; set; } = "";
    public bool RequireLower { get; set; }
    public bool RequireUpper { get; set; }
    public bool RequireDigit { get; set; }
    public bool RequireSymbol { get; set; }
    public long? IntervalSeconds { get; set; }
    public string? Cron { get; set; }
    public string? WindowStart { get; set; }
    public string? WindowEnd { get; set; }
    public long MaxJitterSeconds { get; set; }
    /// <summary>Random, new each time the name is registered; bound into every password's associated data.</summary>
    public string Generation { get; set; } = "";
    public byte[]? Seal { get; set; }

    // ---- passwords (each its own ciphertext; Serial makes every encryption's identity unique) ----
    /// <summary>The password of each account in <see cref="Accounts"/> (null until known).</summary>
    [NotSealed("Password ciphertexts carry their own integrity: each is AEAD-bound to the target, its generation and serial")]
    public List<StoredPassword?> Passwords { get; set; } = [];
    /// <summary>Single user: the password before the last rotation, kept for reference.</summary>
    [NotSealed("Password ciphertexts carry their own integrity: each is AEAD-bound to the target, its generation and serial")]
    public StoredPassword? Previous { get; set; }
    [NotSealed("Password ciphertexts carry their own integrity: each is AEAD-bound to the target, its generation and serial")]
    public long SecretSerial { get; set; }

    // ---- state ----
    /// <summary>Index into <see cref="Accounts"/> of the credential applications use.</summary>
    [NotSealed("Rotation state the engine rewrites at every step, not configuration: it cannot point the target or its admin credential elsewhere")]
    public int ActiveIndex { get; set; }
    [NotSealed("Rotation state the engine rewrites at every step, not configuration: it cannot point the target or its admin credential elsewhere")]
    public long Version { get; set; }
    [NotSealed("Rotation state the engine rewrites at every step, not configuration: it cannot point the target or its admin credential elsewhere")]
    public long? LastRotatedAtUnixMs { get; set; }
    [NotSealed("Rotation state the engine rewrites at every step, not configuration: it cannot point the target or its admin credential elsewhere")]
    public long? NextDueAtUnixMs { get; set; }
    /// <summary>What the due run is, when not a plain scheduled one (e.g. <c>registration</c> for rotate-now).</summary>
    [NotSealed("Rotation state the engine rewrites at every step, not configuration: it cannot point the target or its admin credential elsewhere")]
    public string? DueTrigger { get; set; }
    [NotSealed("Rotation state the engine rewrites at every step, not configuration: it cannot point the target or its admin credential elsewhere")]
    public bool Paused { get; set; }
    [NotSealed("Rotation state the engine rewrites at every step, not configuration: it cannot point the target or its admin credential elsewhere")]
    public bool NeedsAttention { get; set; }
    [NotSealed("Rotation state the engine rewrites at every step, not configuration: it cannot point the target or its admin credential elsewhere")]
    public string? LastError { get; set; }
    [NotSealed("Rotation state the engine rewrites at every step, not configuration: it cannot point the target or its admin credential elsewhere")]
    public int ConsecutiveFailures { get; set; }
    [NotSealed("Rotation state the engine rewrites at every step, not configuration: it cannot point the target or its admin credential elsewhere")]
    public bool Drifted { get; set; }
    [NotSealed("Rotation state the engine rewrites at every step, not configuration: it cannot point the target or its admin credential elsewhere")]
    public long? DriftedAtUnixMs { get; set; }
    [NotSealed("Rotation state the engine rewrites at every step, not configuration: it cannot point the target or its admin credential elsewhere")]
    public long? LastCheckedAtUnixMs { get; set; }
    [NotSealed("Rotation state the engine rewrites at every step, not configuration: it cannot point the target or its admin credential elsewhere")]
    public long? NextDriftCheckAtUnixMs { get; set; }
    [NotSealed("Rotation state the engine rewrites at every step, not configuration: it cannot point the target or its admin credential elsewhere")]
    public long CreatedAtUnixMs { get; set; }
    [NotSealed("Rotation state the engine rewrites at every step, not configuration: it cannot point the target or its admin credential elsewhere")]
    public long NextEventId { get; set; } = 1;

    /// <summary>The rotation under way, persisted before each step; null when idle.</summary>
    [NotSealed("Rotation state the engine rewrites at every step, not configuration: it cannot point the target or its admin credential elsewhere")]
    public PendingRotation? Pending { get; set; }

    public bool Alternating => Accounts.Count == 2;

    internal string Canonical() => string.Join('\n',
        Kind, Host, Port.ToString(CultureInfo.InvariantCulture), Database,
        string.Join(',', Options.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{Escape(o.Key)}={Escape(o.Value)}")),
        string.Join(',', Accounts.Select(Escape)), AdminSecret, ManagesAdminSecret ? "1" : "0",
        PasswordLength.ToString(CultureInfo.InvariantCulture), Escape(PasswordAlphabet),
        $"{RequireLower}{RequireUpper}{RequireDigit}{RequireSymbol}",
        IntervalSeconds?.ToString(CultureInfo.InvariantCulture) ?? "", Cron ?? "", WindowStart ?? "", WindowEnd ?? "",
        // Generation is hex, which escaping leaves as it is; escaped, it cannot take in the lines
        // after it (the TLS fields), so they cannot be dropped while the string stays the same.
        MaxJitterSeconds.ToString(CultureInfo.InvariantCulture), Escape(Generation))
        // Appended only when set, so records sealed before these fields existed still verify.
        + (CaCertificates.Length == 0 && CertificatePin.Length == 0 && !VerifiedTlsByDefault ? "" : $"\n{Escape(CaCertificates)}\n{Escape(CertificatePin)}\n{(VerifiedTlsByDefault ? "1" : "0")}");

    private static string Escape(string value) => Uri.EscapeDataString(value);
}

/// <summary>An encrypted password and the serial its associated data was bound to.</summary>
public sealed class StoredPassword
{
    public long Serial { get; set; }
    public int KekVersion { get; set; }
    public byte[] WrappedDataKey { get; set; } = [];
    public byte[] Ciphertext { get; set; } = [];

    internal SealedValue ToSealed() => new(KekVersion, WrappedDataKey, Ciphertext);
}

/// <summary>A rotation in flight: which account, the new password, and the last step made durable.</summary>
public sealed class PendingRotation
{
    public int AccountIndex { get; set; }
    public StoredPassword Password { get; set; } = new();
    /// <summary><c>create</c>, <c>set</c> or <c>test</c>: the last step known to be done.</summary>
    public string Step { get; set; } = RotationSteps.Create;
    public string Trigger { get; set; } = "";
    public long StartedAtUnixMs { get; set; }
    /// <summary>The statement timeout the process that recorded this rotation bounded its admin statements with; 0 in records written before it was kept.</summary>
    public long StatementTimeoutMs { get; set; }
}

/// <summary>One line of a target's history, keyed <c>name/000000000042</c>.</summary>
public sealed class RotationEventRecord
{
    /// <summary>The event's number within its target (not "Id": LiteDB would take that for the document key).</summary>
    public long Number { get; set; }
    public long StartedAtUnixMs { get; set; }
    public long FinishedAtUnixMs { get; set; }
    public string Trigger { get; set; } = "";
    public string Outcome { get; set; } = "";
    public string Step { get; set; } = "";
    public string Reason { get; set; } = "";
    public long Version { get; set; }
    public string Account { get; set; } = "";
}

/// <summary>The state machine's step names, as persisted and shown.</summary>
public static class RotationSteps
{
    public const string Create = "create";
    public const string Set = "set";
    public const string Test = "test";
    public const string Finish = "finish";
}

/// <summary>History outcomes, as persisted.</summary>
public static class RotationOutcomes
{
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Recovered = "recovered";
    public const string Discarded = "discarded";
    public const string NeedsAttention = "needs-attention";
    public const string Drifted = "drifted";
    public const string DriftCleared = "drift-cleared";
    public const string PasswordReplaced = "password-replaced";
}

/// <summary>What started a rotation or check.</summary>
public static class RotationTriggers
{
    public const string Manual = "manual";
    public const string Scheduled = "scheduled";
    public const string Registration = "registration";
    public const string Startup = "startup";
    public const string DriftCheck = "drift-check";
    public const string Admin = "admin";
    /// <summary>A checked-out account came back (check-in, expiry): its password is rotated before it is lent again.</summary>
    public const string CheckIn = "check-in";
}
