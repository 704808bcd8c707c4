using Vault.Server.Storage;

namespace Vault.Server.Audit;

/// <summary>
/// What the audit trail needs to know about one request, from the moment the interceptor admits
/// it. It is the <see cref="CommitContext"/> tag of every write the request makes, so the
/// request's entry is written and made durable with its first commit: a change and its entry are
/// durable together, or neither is.
/// </summary>
public sealed class AuditScope(string requestId, string rpc)
{
    private int _recorded;

    /// <summary>The request in the current asynchronous flow, if the interceptor admitted one.</summary>
    public static AuditScope? Current
    {
        get => CommitContext.Current as AuditScope;
        set => CommitContext.Current = value;
    }

    public string RequestId { get; } = requestId;

    public string Rpc { get; } = rpc;

    /// <summary>The caller's token accessor; a login sets the accessor of the token it issues.</summary>
    public string Accessor { get; set; } = "";

    /// <summary>The person the caller's token acts for; a person's login sets the entity it issues a token for.</summary>
    public string? Entity { get; set; }

    public string? EntityId { get; set; }

    /// <summary>A security event the request raised (e.g. <c>user-locked</c>), for alerts.</summary>
    public string? Event { get; set; }

    public string Path { get; set; } = "";

    /// <summary>The token or secret id presented; only its HMAC reaches the log.</summary>
    public string? Credential { get; set; }

    /// <summary>
    /// Names the resource the current request acted on in its entry, when the access table named
    /// none (an RPC that needs a token but no policy: approving a request, validating an MFA code).
    /// </summary>
    public static void NameIfUnnamed(string path)
    {
        if (Current is { Path.Length: 0 } scope)
        {
            scope.Path = path;
        }
    }

    /// <summary>Whether an entry of this request is already durable (written with a commit, or at its end).</summary>
    public bool Recorded => Volatile.Read(ref _recorded) != 0;

    /// <summary>Claims the right to write the request's entry; false if it is already written.</summary>
    internal bool TryClaim() => Interlocked.CompareExchange(ref _recorded, 1, 0) == 0;

    /// <summary>Gives the claim back: the entry could not be written.</summary>
    internal void Release() => Volatile.Write(ref _recorded, 0);

    /// <summary>The entry for this request; <paramref name="hash"/> gives the HMAC of the credential presented.</summary>
    public AuditEvent ToEvent(string outcome, string errorCode, Func<string, string> hash) =>
        new(RequestId, Accessor, Rpc, Path, outcome, errorCode, Credential is { Length: > 0 and <= 4096 } credential ? hash(credential) : "",
            Entity is { Length: > 0 } ? Entity : null, EntityId is { Length: > 0 } ? EntityId : null, Event);

    /// <summary>Marks the request as recorded by an entry written at its end.</summary>
    internal void MarkRecorded() => Volatile.Write(ref _recorded, 1);
}
