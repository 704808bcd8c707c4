using Grpc.Core;
using Grpc.Core.Interceptors;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Vault.Protocol.V1;
using Vault.Server.Audit;
using Vault.Server.Auth;
using Vault.Server.Crypto;
using Vault.Server.Idempotency;

namespace Vault.Server.Grpc;

/// <summary>
/// The one place every vault.v1 RPC passes: seal check, authentication, authorisation against
/// <see cref="AccessRules"/>, and the mapping of domain exceptions to status codes. Nothing but
/// the domain exception's own message reaches the client.
/// </summary>
public sealed class VaultInterceptor(SecurityBarrier barrier, TokenManager tokens, AccessRules rules, AuditLog audit, IdempotentWrites idempotent, TimeProvider clock, ILogger<VaultInterceptor> logger) : Interceptor
{
    private const string AuthKey = "vault.auth";
    private const string AccessKey = "vault.access";

    /// <summary>The caller of the current RPC, set by the interceptor.</summary>
    public static CallerContext Caller(ServerCallContext context) =>
        context.UserState.TryGetValue(AuthKey, out var auth) && auth is CallerContext ctx
            ? ctx
            : throw new UnauthenticatedException("no authenticated caller");

    /// <summary>
    /// The accesses the current RPC was authorised with. A handler that finds, under its lock,
    /// that the request now needs more than was checked (the resource changed meanwhile) refuses
    /// rather than act on the stale check.
    /// </summary>
    public static IReadOnlyList<RequiredAccess> Authorised(ServerCallContext context) =>
        context.UserState.TryGetValue(AccessKey, out var check) && check is AccessCheck c ? c.All : [];

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        // Decided by the message type, never by the request path: ASP.NET Core routes paths
        // case-insensitively, so "/VAULT.V1.KvService/Get" reaches the same handler.
        if (!IsVaultMessage<TRequest>())
        {
            return await continuation(request, context);
        }
        if (request is InitRequest or UnsealRequest or StatusRequest)
        {
            try
            {
                RefuseKey(request, context);
                return await continuation(request, context);
            }
            catch (Exception ex) when (ex is not RpcException)
            {
                throw ToRpcException(ex, context);
            }
        }
        if (barrier.IsSealed)
        {
            throw ToRpcException(new VaultSealedException(), context);
        }
        // Fail closed: nothing runs that cannot be recorded — but the one request that lets an
        // operator acknowledge lost entries (it is audited as the first entry after the gap).
        if (request is not AcknowledgeAuditGapRequest)
        {
            await RequireWritableAuditAsync();
        }
        var trail = new AuditScope(context.GetHttpContext().TraceIdentifier, RpcNames.For(request));
        TResponse? response = default;
        AccessCheck? check = null;
        RpcException? failure = null;
        // Every write the request makes carries it, so its entry commits with the first of them.
        AuditScope.Current = trail;
        try
        {
            if (request is AppRoleLoginRequest login)
            {
                // Login needs no token; it is audited (and throttled) like any other request.
                trail.Path = "auth/approle/login";
                trail.Credential = login.SecretId;
            }
            else if (request is LdapLoginRequest)
            {
                // A person's directory login: like userpass, the password never reaches the entry.
                trail.Path = ResourcePaths.LdapLogin;
            }
            else if (request is GenerateRootRequest)
            {
                // For a vault with no root token left: the passphrase or the shares prove who
                // asks (never in the entry); the step that makes the token names it and its event.
                trail.Path = "sys/generate-root";
            }
            else if (request is UserpassLoginRequest or ChangePasswordRequest)
            {
                // A person's login, or their password change: no token, the password (never in
                // the entry, not even as an HMAC) proves who they are; failures count to a lockout.
                trail.Path = request is UserpassLoginRequest ? ResourcePaths.UserpassLogin : ResourcePaths.UserpassPasswordChange;
            }
            else
            {
                check = Authorize(request, context, trail);
            }
            if (check is null)
            {
                // No token, so no key: a login is not a write a client repeats.
                RefuseKey(request, context);
            }
            if (request is SealRequest)
            {
                // Sealing erases the key that chains the log: record it while it still can be.
                await AppendAsync(context, trail, failure: null, durableBeforeReply: true);
            }
            response = await continuation(request, context);
            Filter(check, response, context);
            if (request is SealRequest || trail.Recorded)
            {
                // Recorded already: with the seal's own entry, or with the request's first commit.
                return response;
            }
        }
        catch (RpcException ex)
        {
            failure = ex;
        }
        catch (Exception ex)
        {
            failure = ToRpcException(ex, context);
        }
        if (failure is not null && request is AcknowledgeAuditGapRequest && audit.Missing is not null)
        {
            // A refused acknowledgement changed nothing, and nothing can be appended before the
            // gap is acknowledged: the caller hears why it was refused.
            throw failure;
        }
        // A failure after a commit is recorded too: a second entry of the same request id. An
        // acknowledged gap is the one change not committed with its request's entry.
        // A security event (a lockout) is durable before the reply, like a change.
        await AppendAsync(context, trail, failure, durableBeforeReply: request is AcknowledgeAuditGapRequest || trail.Event is not null);
        return failure is null ? response! : throw failure;
    }

    private async Task RequireWritableAuditAsync()
    {
        if (audit.Failure is not null && !await audit.ProbeAsync())
        {
            throw new RpcException(new Status(StatusCode.Unavailable,
                audit.Missing is { } missing ? $"audit log unavailable: {missing.Describe()}; request refused" : "audit log unavailable: request refused"));
        }
    }

    /// <summary>
    /// Writes the entry of a request whose changes (if any) are already recorded with their
    /// commit, so what is left is read-only: durable within the audit's flush window, unless it
    /// is a seal's, which must be durable before the key that chains the log is gone.
    /// </summary>
    private async Task AppendAsync(ServerCallContext context, AuditScope trail, RpcException? failure, bool durableBeforeReply = false)
    {
        try
        {
            var entry = trail.ToEvent(failure is null ? "ok" : "error", failure?.StatusCode.ToString() ?? "", audit.HashValue);
            await (durableBeforeReply ? audit.AppendAsync(entry) : audit.AppendReadOnlyAsync(entry));
            trail.MarkRecorded();
        }
        catch (Exception ex) when (ex is AuditUnavailableException or VaultSealedException)
        {
            throw ToRpcException(ex, context);
        }
    }

    // Client and duplex streams: none in vault.v1; until one is authorised here, any that appears is refused.
    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation) =>
        IsVaultMessage<TRequest>() ? throw StreamingRefused() : continuation(requestStream, context);

    /// <summary>
    /// Server streams (WatchTarget) pass the same gate as unary calls — seal, audit health, token,
    /// policy — and are audited once, when the stream opens (before anything is sent).
    /// </summary>
    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        if (!IsVaultMessage<TRequest>())
        {
            await continuation(request, responseStream, context);
            return;
        }
        // No list of streaming RPCs here: the access table refuses any RPC it has no row for.
        if (barrier.IsSealed)
        {
            throw ToRpcException(new VaultSealedException(), context);
        }
        await RequireWritableAuditAsync();
        var trail = new AuditScope(context.GetHttpContext().TraceIdentifier, RpcNames.For(request));
        RpcException? refused = null;
        try
        {
            RefuseKey(request, context);
            Authorize(request, context, trail);
        }
        catch (RpcException ex)
        {
            refused = ex;
        }
        catch (Exception ex)
        {
            refused = ToRpcException(ex, context);
        }
        await AppendAsync(context, trail, refused);
        if (refused is not null)
        {
            throw refused;
        }
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw ToRpcException(ex, context);
        }
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation) =>
        IsVaultMessage<TRequest>() ? throw StreamingRefused() : continuation(requestStream, responseStream, context);

    private static bool IsVaultMessage<TRequest>() => typeof(TRequest).Namespace == typeof(InitRequest).Namespace;

    private static RpcException StreamingRefused() => new(new Status(StatusCode.PermissionDenied, "streaming RPC has no access rule"));

    /// <summary>Checks every access the RPC needs (<see cref="AccessRules"/>); the check, for its response filter, or null.</summary>
    private AccessCheck? Authorize(object request, ServerCallContext context, AuditScope trail)
    {
        trail.Credential = BearerToken(context);
        var caller = tokens.Resolve(trail.Credential);
        context.UserState[AuthKey] = caller;
        trail.Accessor = caller.Accessor;
        trail.Entity = caller.Token.Entity;
        trail.EntityId = caller.Token.EntityId;
        var check = rules.For(context.Method, request, caller);
        trail.Path = check?.Primary.Path ?? "";
        if (check is not null)
        {
            context.UserState[AccessKey] = check;
        }
        if (context.RequestHeaders.GetValue(IdempotentWrites.Header) is { } key)
        {
            // A write the client may send again: its unit records the answer a repeat is given.
            var call = idempotent.Begin(trail.Rpc, key, caller.Accessor, ((IMessage)request).ToByteArray());
            IdempotentWrites.Use(call);
            context.ResponseTrailers.Add(IdempotentWrites.HonouredTrailer, "1");
            if (idempotent.Answered(call))
            {
                // The repeat of a write this token was allowed to make, and made: it is given the
                // answer and changes nothing, whatever the write changed since (a put made the
                // secret exist, so a create-only policy would now refuse it; a revoke deleted the
                // lease its holder could end).
                return check;
            }
        }
        foreach (var access in check?.All ?? [])
        {
            if (!caller.Acl.Allows(access.Path, access.AnyOf))
            {
                throw new AccessDeniedException($"permission denied: {Capabilities.Describe(access.AnyOf)} on '{access.Path}' is not granted");
            }
            // Step-up: the rule that grants it asks for a code validated for this token recently.
            if (caller.Acl.MfaWindow(access.Path, access.AnyOf) is { } window
                && !(caller.Token.MfaAtUnixMs is { } validated && clock.GetUtcNow().ToUnixTimeMilliseconds() - validated <= (long)window.TotalMilliseconds))
            {
                throw new MfaRequiredException($"'{access.Path}' needs an MFA code validated for this token within the last {window.TotalSeconds:0} s (vaultctl mfa validate)");
            }
        }
        return check;
    }

    /// <summary>A key sent to a call that is not one of the writes answered once per key is refused, not ignored.</summary>
    private static void RefuseKey(object request, ServerCallContext context)
    {
        if (context.RequestHeaders.GetValue(IdempotentWrites.Header) is not null)
        {
            IdempotentWrites.RequireHonoured(RpcNames.For(request));
        }
    }

    /// <summary>Drops from a listing what the caller may not see, as the RPC's access check says.</summary>
    private static void Filter(AccessCheck? check, object? response, ServerCallContext context)
    {
        if (check?.Filter is { } filter && response is not null)
        {
            var acl = Caller(context).Acl;
            filter(response, access => acl.Allows(access.Path, access.AnyOf));
        }
    }

    private static string? BearerToken(ServerCallContext context)
    {
        var header = context.RequestHeaders.GetValue("authorization");
        if (header is null)
        {
            return null;
        }
        const string scheme = "Bearer ";
        return header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) ? header[scheme.Length..].Trim() : null;
    }

    private RpcException ToRpcException(Exception ex, ServerCallContext context)
    {
        var status = StatusOf(ex, context.CancellationToken.IsCancellationRequested);
        if (status.StatusCode is StatusCode.Internal or StatusCode.DataLoss)
        {
            GrpcLog.RequestFailed(logger, context.Method, status.StatusCode, ex);
        }
        return new RpcException(new Status(status.StatusCode, Bounded(status.Detail)));
    }

    /// <summary>
    /// The status a request's error is answered with: each <see cref="VaultException"/> its own
    /// code and message (a test holds every one of them to it), anything else INTERNAL with no detail.
    /// </summary>
    internal static Status StatusOf(Exception ex, bool requestCancelled) => ex switch
    {
        ValidationException => new Status(StatusCode.InvalidArgument, ex.Message),
        NotFoundException => new Status(StatusCode.NotFound, ex.Message),
        VersionConflictException => new Status(StatusCode.Aborted, ex.Message),
        VaultSealedException or PreconditionException or MfaRequiredException => new Status(StatusCode.FailedPrecondition, ex.Message),
        UnauthenticatedException or Identity.MfaCodeRefusedException => new Status(StatusCode.Unauthenticated, ex.Message),
        AccessDeniedException => new Status(StatusCode.PermissionDenied, ex.Message),
        DataIntegrityException => new Status(StatusCode.DataLoss, ex.Message),
        AuditUnavailableException or UnavailableException or StorageFailedException or FencedException => new Status(StatusCode.Unavailable, ex.Message),
        RateLimitedException or DiskFullException => new Status(StatusCode.ResourceExhausted, ex.Message),
        OperationCanceledException when requestCancelled => new Status(StatusCode.Cancelled, "request cancelled"),
        _ => new Status(StatusCode.Internal, "internal error"),
    };

    // A status detail travels as an HTTP/2 header (grpc-message, percent-encoded: up to three bytes
    // a character); clients refuse header blocks over their limit and drop the whole connection.
    private const int MaxDetailChars = 1024;

    /// <summary>
    /// A domain message cut to <see cref="MaxDetailChars"/>: a message that quotes what the caller
    /// sent (a file name, a path) must not grow with it. A 100 KB before_file once made the detail
    /// big enough that the client dropped the connection, failing every call on it.
    /// </summary>
    private static string Bounded(string detail) =>
        detail.Length <= MaxDetailChars ? detail : string.Concat(detail.AsSpan(0, MaxDetailChars), "… (cut)");
}
