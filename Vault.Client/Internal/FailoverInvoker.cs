using System.Net.Http;
using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;

namespace Vault.Client.Internal;

/// <summary>
/// Calls one of several vault nodes, moving to the next when the current one is UNAVAILABLE — and
/// retrying the call there only when that is safe: the request never reached the node (the
/// connection could not be made), the call only reads, or it is a write the server answers once
/// per key: each such write carries a fresh <c>vault-idempotency-key</c>, the same on every node it
/// is sent to, so a repeat of one that was made is given its answer and changes nothing (sent again
/// only once an earlier keyed answer showed the vault honours keys). Any other
/// write whose fate is unknown (the connection broke after it was sent) is not repeated: its
/// UNAVAILABLE reaches the caller, and the next call goes to the next node. Streams start on the
/// current node and are not retried.
/// <para>
/// <b>Read-your-writes.</b> Every call presents the newest commit index an answer carried
/// (<c>vault-min-index</c>), so a node still behind it (a standby that has not yet seen this
/// client's write) waits for it or answers UNAVAILABLE, and the read goes on to another node.
/// </para>
/// </summary>
internal sealed class FailoverInvoker(IReadOnlyList<GrpcChannel> channels) : CallInvoker
{
    private readonly CallInvoker[] _invokers = [.. channels.Select(c => c.CreateCallInvoker())];
    private int _current;
    private long _seenIndex;

    private const string IndexHeader = "vault-index";
    private const string MinIndexHeader = "vault-min-index";
    private const string KeyHeader = "vault-idempotency-key";
    private const string HonouredTrailer = "vault-idempotency";
    private bool _keysHonoured;

    /// <summary>
    /// Whether a keyed write's answer said the vault honoured its key: only then is a keyed write
    /// whose fate is unknown sent again (a node from before keys would make it twice).
    /// </summary>
    public bool KeysHonoured => Volatile.Read(ref _keysHonoured);

    /// <summary>The writes the server answers once per key (its <c>IdempotentWrites.Methods</c>), by full name.</summary>
    internal static readonly IReadOnlySet<string> Keyed = new HashSet<string>(StringComparer.Ordinal)
    {
        "/vault.v1.KvService/Put",
        "/vault.v1.KvService/Delete",
        "/vault.v1.KvService/Undelete",
        "/vault.v1.KvService/Destroy",
        "/vault.v1.LeaseService/IssueCredential",
        "/vault.v1.LeaseService/RenewLease",
"/vault.v1.LeaseService/RevokeLease",
"/vault.v1.LeaseService/CheckoutAccount",
"/vault.v1.LeaseService/LeaseStaticCredential",
    };

    /// <summary>The newest commit index an answer carried (0: none yet, or a single node that sends none).</summary>
    public long SeenIndex => Interlocked.Read(ref _seenIndex);

    /// <summary>The node calls go to now (an index into the addresses).</summary>
    public int Current => Volatile.Read(ref _current);

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        options = WithIndex(options);
        var keyed = _invokers.Length > 1 && Keyed.Contains(method.FullName);
        if (keyed && options.Headers?.Get(KeyHeader) is null)
        {
            // One key for every attempt of this call: a repeat is recognised wherever it lands.
            var headers = new Metadata();
            foreach (var entry in options.Headers ?? [])
            {
                headers.Add(entry);
            }
            headers.Add(KeyHeader, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)).TrimEnd('=').Replace('+', '-').Replace('/', '_'));
            options = options.WithHeaders(headers);
        }
        var attempt = new Attempt<TResponse>();
        var response = CallAsync(method, host, options, request, attempt, keyed);
        return new AsyncUnaryCall<TResponse>(response, attempt.HeadersAfterAsync(response), attempt.GetStatus, attempt.GetTrailers, attempt.Dispose);
    }

    private async Task<TResponse> CallAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request, Attempt<TResponse> attempt, bool keyed)
        where TRequest : class where TResponse : class
    {
        var start = Current;
        for (var tried = 0; ; tried++)
        {
            var node = (start + tried) % _invokers.Length;
            var call = _invokers[node].AsyncUnaryCall(method, host, options, request);
            attempt.Use(call);
            try
            {
                var response = await call.ResponseAsync.ConfigureAwait(false);
                Interlocked.CompareExchange(ref _current, node, start);
                Saw(await call.ResponseHeadersAsync.ConfigureAwait(false));
                if (keyed && call.GetTrailers().GetValue(HonouredTrailer) is not null)
                {
                    Volatile.Write(ref _keysHonoured, true);
                }
                return response;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable && tried < _invokers.Length - 1)
            {
                // The next call goes to the next node, whether or not this one is retried there.
                Interlocked.CompareExchange(ref _current, (node + 1) % _invokers.Length, node);
                if (!NeverSent(ex) && !ReadsOnly(method.Name) && !(keyed && KeysHonoured))
                {
                    throw;
                }
            }
        }
    }

    /// <summary>The call failed while connecting: the node never saw the request.</summary>
    internal static bool NeverSent(RpcException error)
    {
        for (var cause = error.Status.DebugException; cause is not null; cause = cause.InnerException)
        {
            if (cause is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError }
                || cause is SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.HostNotFound })
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Methods that change nothing, which may be sent again to another node whatever happened to them.</summary>
    internal static bool ReadsOnly(string method) =>
        method is "Status" or "Verify" || method.StartsWith("Get", StringComparison.Ordinal) || method.StartsWith("List", StringComparison.Ordinal)
        || method.StartsWith("Lookup", StringComparison.Ordinal) || method.StartsWith("Tail", StringComparison.Ordinal);

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        _invokers[Current].BlockingUnaryCall(method, host, WithIndex(options), request);

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        _invokers[Current].AsyncServerStreamingCall(method, host, WithIndex(options), request);

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        _invokers[Current].AsyncClientStreamingCall(method, host, WithIndex(options));

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        _invokers[Current].AsyncDuplexStreamingCall(method, host, WithIndex(options));

    /// <summary>The call's options with the newest commit index seen, when there is one.</summary>
    private CallOptions WithIndex(CallOptions options)
    {
        var index = SeenIndex;
        if (index == 0)
        {
            return options;
        }
        var headers = new Metadata();
        foreach (var entry in options.Headers ?? [])
        {
            if (!entry.Key.Equals(MinIndexHeader, StringComparison.Ordinal))
            {
                headers.Add(entry);
            }
        }
        headers.Add(MinIndexHeader, index.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return options.WithHeaders(headers);
    }

    private void Saw(Metadata headers)
    {
        if (headers.GetValue(IndexHeader) is { } text && long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index))
        {
            long seen;
            while (index > (seen = Interlocked.Read(ref _seenIndex)) && Interlocked.CompareExchange(ref _seenIndex, index, seen) != seen)
            {
                // Another answer moved it meanwhile: compare again.
            }
        }
    }

    /// <summary>The call made last for one unary call: its headers, status and trailers are the caller's.</summary>
    private sealed class Attempt<TResponse>
    {
        private AsyncUnaryCall<TResponse>? _call;

        /// <summary>The headers of the attempt that ended the call (the earlier ones failed over).</summary>
        public async Task<Metadata> HeadersAfterAsync(Task<TResponse> response)
        {
            try
            {
                await response.ConfigureAwait(false);
            }
            catch (RpcException)
            {
                // Its headers, if any, are still the caller's to read.
            }
            return await Volatile.Read(ref _call)!.ResponseHeadersAsync.ConfigureAwait(false);
        }

        public void Use(AsyncUnaryCall<TResponse> call) => Interlocked.Exchange(ref _call, call)?.Dispose();

        public Status GetStatus() => Volatile.Read(ref _call)?.GetStatus() ?? throw new InvalidOperationException("the call has not started");

        public Metadata GetTrailers() => Volatile.Read(ref _call)?.GetTrailers() ?? throw new InvalidOperationException("the call has not started");

        public void Dispose() => Volatile.Read(ref _call)?.Dispose();
    }
}
