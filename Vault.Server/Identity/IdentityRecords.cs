using Vault.Server.Crypto;

namespace Vault.Server.Identity;

/// <summary>A person (keyed by name), sealed like policies: whoever writes the data file must not be able to add a policy or a group.</summary>
public sealed class EntityRecord
{
    /// <summary>Random, new for every entity created: tokens name it, so a name deleted and created again is another person.</summary>
    public string EntityId { get; set; } = "";
    public List<string> Policies { get; set; } = [];
    public bool Disabled { get; set; }
    /// <summary>The groups whose members list the entity, kept with them in every write (a token's policies are read from here).</summary>
    public List<string> Groups { get; set; } = [];
    public long CreatedAtUnixMs { get; set; }
    /// <summary>Approved access requests in effect: their policies count until their end.</summary>
    public List<ActiveGrantRecord> ActiveGrants { get; set; } = [];
    public byte[]? Seal { get; set; }

    internal string Canonical() =>
        $"{EntityId}\n{string.Join(',', Policies)}\n{Disabled}\n{string.Join(',', Groups)}\n{CreatedAtUnixMs}"
        // Only when there are any, so entities sealed before grants existed still verify.
        + (ActiveGrants.Count > 0 ? "\n" + string.Join(';', ActiveGrants.Select(g => $"{g.RequestId}={string.Join(',', g.Policies)}@{g.EndsAtUnixMs}")) : "");
}

/// <summary>A group of entities (keyed by name) and the policies its members hold.</summary>
public sealed class GroupRecord
{
    public List<string> Policies { get; set; } = [];
    public List<string> Members { get; set; } = [];
    public byte[]? Seal { get; set; }

    internal string Canonical() => $"{string.Join(',', Policies)}\n{string.Join(',', Members)}";
}

/// <summary>
/// A userpass login (keyed by username). The password is an Argon2id hash keyed with the keyring
/// (<see cref="PasswordHasher"/>); the lockout state is sealed with the rest, so it cannot be
/// reset by editing the data file.
/// </summary>
public sealed class UserpassUserRecord
{
    public string Entity { get; set; } = "";
    public List<string> Policies { get; set; } = [];
    public long TokenTtlSeconds { get; set; }
    public long TokenMaxTtlSeconds { get; set; }
    public string PasswordHash { get; set; } = "";
    public long PasswordChangedAtUnixMs { get; set; }
    public int FailedLogins { get; set; }
    public int Lockouts { get; set; }
    public long? LockedUntilUnixMs { get; set; }
    public byte[]? Seal { get; set; }

    internal string Canonical() =>
        $"{Entity}\n{string.Join(',', Policies)}\n{TokenTtlSeconds}\n{TokenMaxTtlSeconds}\n{PasswordHash}\n{PasswordChangedAtUnixMs}\n{FailedLogins}\n{Lockouts}\n{LockedUntilUnixMs}";
}

/// <summary>
/// An entity's TOTP enrolment (keyed by entity name). The secret is encrypted under the barrier,
/// bound to the entity's id; recovery codes are kept only as keyed hashes. The last step a code
/// was accepted for is sealed with the rest, so a code cannot be replayed by editing it back.
/// </summary>
public sealed class MfaRecord
{
    public string EntityId { get; set; } = "";
    /// <summary>True once a first code from the enrolment was validated; until then it is pending and not required.</summary>
    public bool Confirmed { get; set; }
    public long EnrolledAtUnixMs { get; set; }
    /// <summary>The last time step a code was accepted for: a code is accepted once, and never one of an earlier step.</summary>
    public long LastUsedStep { get; set; }
    public List<string> RecoveryCodeHashes { get; set; } = [];
    public int FailedCodes { get; set; }
    public int Lockouts { get; set; }
    public long? LockedUntilUnixMs { get; set; }
    [NotSealed("the secret's AES-GCM envelope: its associated data binds it to the entity id, so a swapped or edited one fails to decrypt")]
    public int KekVersion { get; set; }
    [NotSealed("the secret's AES-GCM envelope: its associated data binds it to the entity id, so a swapped or edited one fails to decrypt")]
    public byte[] WrappedDataKey { get; set; } = [];
    [NotSealed("the secret's AES-GCM envelope: its associated data binds it to the entity id, so a swapped or edited one fails to decrypt")]
    public byte[] Ciphertext { get; set; } = [];
    public byte[]? Seal { get; set; }

    internal string Canonical() =>
        $"{EntityId}\n{Confirmed}\n{EnrolledAtUnixMs}\n{LastUsedStep}\n{string.Join(',', RecoveryCodeHashes)}\n{FailedCodes}\n{Lockouts}\n{LockedUntilUnixMs}";

    internal SealedValue ToSealed() => new(KekVersion, WrappedDataKey, Ciphertext);
}

/// <summary>How userpass logs people in (one record, in the system collection), sealed: editing the data file must not turn MFA off.</summary>
public sealed class UserpassConfigRecord
{
    public const string Id = "auth-userpass-config";

    public bool RequireMfa { get; set; }
    public byte[]? Seal { get; set; }

    internal string Canonical() => $"{RequireMfa}";
}
