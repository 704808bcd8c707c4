namespace Vault.Server;

/// <summary>Base of the domain errors that the gRPC edge maps to status codes.</summary>
public abstract class VaultException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A path, version, token or policy that does not exist (NOT_FOUND).</summary>
public sealed class NotFoundException(string message) : VaultException(message);

/// <summary>A check-and-set mismatch or a concurrent change (ABORTED).</summary>
public sealed class VersionConflictException(string message) : VaultException(message);

/// <summary>The vault is sealed (FAILED_PRECONDITION).</summary>
public sealed class VaultSealedException() : VaultException("vault is sealed");

/// <summary>The request is valid but the vault is not in a state to do it (FAILED_PRECONDITION).</summary>
public sealed class PreconditionException(string message) : VaultException(message);

/// <summary>No valid token, or a wrong passphrase (UNAUTHENTICATED).</summary>
public sealed class UnauthenticatedException(string message) : VaultException(message);

/// <summary>The token's policies do not grant what the request needs (PERMISSION_DENIED).</summary>
public sealed class AccessDeniedException(string message) : VaultException(message);

/// <summary>Bad input; the message names the field (INVALID_ARGUMENT).</summary>
public sealed class ValidationException(string field, string problem) : VaultException($"{field}: {problem}")
{
    /// <summary>The request field at fault.</summary>
    public string Field { get; } = field;
}

/// <summary>A stored record failed authentication: tampered, swapped or truncated (DATA_LOSS).</summary>
public sealed class DataIntegrityException(string message, Exception? inner = null) : VaultException(message, inner);

/// <summary>Too many attempts; try again later (RESOURCE_EXHAUSTED).</summary>
public sealed class RateLimitedException(string message) : VaultException(message);

/// <summary>A system the vault depends on (a rotation target's database) did not answer; try again (UNAVAILABLE).</summary>
public sealed class UnavailableException(string message) : VaultException(message);

/// <summary>
/// A write refused because this node's term as the active one is over (UNAVAILABLE: another node
/// is active, or will be; try it). See <see cref="Storage.Postgres.LeaderLease"/>.
/// </summary>
public sealed class FencedException(string message) : VaultException(message);

/// <summary>The disk has no space for the write (RESOURCE_EXHAUSTED); nothing of it applied. See <see cref="Storage.DiskReserve"/>.</summary>
public sealed class DiskFullException(string message) : VaultException(message);

/// <summary>
/// The store could not make a write durable (UNAVAILABLE). After a failed log append, data-file
/// write or flush it no longer trusts what is on disk and refuses every write until a restart,
/// which recovers from the log; a failed read of the data file fails only the writes of its batch.
/// </summary>
public sealed class StorageFailedException(string message, Exception inner) : VaultException(message, inner);

/// <summary>
/// The call needs a second factor: a login of a person enrolled in MFA without a code, or a path
/// whose rule needs an MFA code validated for the token recently (FAILED_PRECONDITION
/// "mfa required: …"; clients prompt for a code when the detail starts so).
/// </summary>
public sealed class MfaRequiredException(string reason) : VaultException($"{Prefix}: {reason}")
{
    public const string Prefix = "mfa required";
}
