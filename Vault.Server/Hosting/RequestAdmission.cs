using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Vault.Server.Storage;

namespace Vault.Server.Hosting;

/// <summary>
/// Bounds, in bytes, the memory requests can make the server hold: the request messages being
/// handled plus the store's backlog (<see cref="IVaultStore.PendingBytes"/>). A request that would
/// go beyond <see cref="VaultServerOptions.InFlightLimitBytes"/> is answered
/// <c>RESOURCE_EXHAUSTED</c> at once, before its message is read, and changes nothing.
/// <para>
/// Where: an ASP.NET Core middleware in front of the gRPC endpoints, not the interceptor.
/// grpc-dotnet reads a whole request message into memory and decodes it before any interceptor
/// runs, so an interceptor would count a message only once it is buffered (twice over, bytes and
/// decoded strings). gRPC frames every message as a 1-byte compression flag and a 4-byte
/// big-endian length; the middleware waits for those 5 bytes and leaves them in the request pipe
/// for grpc-dotnet. gRPC makes Content-Length optional, so the prefix is the earliest point at
/// which every client's message size is known. What Kestrel has received by then is bounded by HTTP/2 flow
/// control (the connection's receive window, 1 MiB by default), and is dropped with the
/// stream when a request is refused.
/// </para>
/// <para>
/// Small requests (at most <see cref="SmallRequestBytes"/>) are not starved by large ones: they
/// have a quarter of the bound to themselves, and large requests share the other three quarters
/// with the store's backlog (which a burst of large writes fills, and small requests should not
/// pay for). A small request that does not fit is refused at once. A large one waits in line
/// (first come, first served) up to <see cref="VaultServerOptions.AdmissionQueueTimeout"/> for
/// room, then is refused: refusing
/// every large request at once turns a burst into a storm of retries, each resending its body,
/// and Kestrel closes a connection whose streams are reset that fast (ENHANCE_YOUR_CALM). A
/// waiting request holds no more than what flow control let its connection send; at most
/// <see cref="MaxWaiting"/> wait, beyond that they are refused at once.
/// </para>
/// </summary>
public sealed class RequestAdmission(IVaultStore store, IOptions<VaultServerOptions> options) : IDisposable
{
    /// <summary>Requests whose message is at most this size are small: they have a quarter of the bound to themselves and never wait.</summary>
    public const int SmallRequestBytes = 64 * 1024;

    /// <summary>Large requests that may wait for room at once.</summary>
    public const int MaxWaiting = 1024;

    private const int PrefixBytes = 5;
    // The store's backlog shrinks without telling anyone: the request at the head of the line looks again this often.
    private static readonly TimeSpan RecheckInterval = TimeSpan.FromMilliseconds(5);
    private readonly long _limit = options.Value.InFlightLimitBytes;
    private readonly int _maxMessage = options.Value.MaxMessageBytes;
    private readonly TimeSpan _queueTimeout = options.Value.AdmissionQueueTimeout;
    // One large request at a time stands at the head of the line; the others wait for it.
    private readonly long _smallLimit = options.Value.InFlightLimitBytes / 4;
    private readonly SemaphoreSlim _line = new(1, 1);
    private long _inFlight;
    private long _smallInFlight;
    private int _waiting;

    /// <summary>Bytes of the request messages admitted and not yet answered.</summary>
    public long InFlightBytes => Interlocked.Read(ref _inFlight) + Interlocked.Read(ref _smallInFlight);

    /// <summary>The middleware: admits, refuses or passes through (anything that is not a gRPC request).</summary>
    public async Task InvokeAsync(HttpContext context, Func<Task> next)
    {
        if (!IsGrpc(context.Request))
        {
            await next();
            return;
        }
        long charge;
        try
        {
            if (await DeclaredMessageBytesAsync(context.Request.BodyReader, context.RequestAborted) is not { } declared)
            {
                // No complete prefix: grpc-dotnet answers the malformed request itself.
                await next();
                return;
            }
            charge = declared;
            if (!await AdmitAsync(charge, context.RequestAborted))
            {
                Refuse(context.Response, InFlightBytes + store.PendingBytes);
                return;
            }
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return;
        }
        try
        {
            await next();
        }
        finally
        {
            Interlocked.Add(ref charge > SmallRequestBytes ? ref _inFlight : ref _smallInFlight, -charge);
        }
    }

    /// <summary>
    /// Admits a request of <paramref name="bytes"/>: at once if it fits (and, for a large one, no
    /// other large one is waiting); a large one otherwise waits in line for room.
    /// </summary>
    /// <returns>false if it was refused: a small one that did not fit, or a large one that found no room in time.</returns>
    private async Task<bool> AdmitAsync(long bytes, CancellationToken cancellationToken)
    {
        var large = bytes > SmallRequestBytes;
        if ((!large || Volatile.Read(ref _waiting) == 0) && TryAdmit(bytes))
        {
            return true;
        }
        if (!large || _queueTimeout == TimeSpan.Zero)
        {
            return false;
        }
        if (Interlocked.Increment(ref _waiting) > MaxWaiting)
        {
            Interlocked.Decrement(ref _waiting);
            return false;
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_queueTimeout);
        try
        {
            await _line.WaitAsync(timeout.Token);
            try
            {
                while (!TryAdmit(bytes))
                {
                    await Task.Delay(RecheckInterval, timeout.Token);
                }
                return true;
            }
            finally
            {
                _line.Release();
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
    }

    /// <summary>
    /// Takes <paramref name="bytes"/> from the bound if they fit: a small request in the quarter kept
    /// for small ones, a large one in the rest beside the store's backlog. Otherwise takes nothing.
    /// </summary>
    private bool TryAdmit(long bytes)
    {
        var large = bytes > SmallRequestBytes;
        ref var counter = ref large ? ref _inFlight : ref _smallInFlight;
        var limit = large ? _limit - _smallLimit : _smallLimit;
        while (true)
        {
            var inFlight = Interlocked.Read(ref counter);
            var used = inFlight + (large ? store.PendingBytes : 0);
            if (used + bytes > limit)
            {
                return false;
            }
            if (Interlocked.CompareExchange(ref counter, inFlight + bytes, inFlight) == inFlight)
            {
                return true;
            }
        }
    }

    private static bool IsGrpc(HttpRequest request) =>
        request.ContentType is { } type && type.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The size of the request's first message from its gRPC prefix, read without consuming it.
    /// A compressed message is charged as the largest message the server accepts (it may expand
    /// to that); a declared length beyond that is charged at that size, and grpc-dotnet refuses
    /// the message itself without reading it.
    /// </summary>
    /// <returns>null if the body ends before a whole prefix.</returns>
    private async Task<long?> DeclaredMessageBytesAsync(System.IO.Pipelines.PipeReader body, CancellationToken cancellationToken)
    {
        var result = await body.ReadAtLeastAsync(PrefixBytes, cancellationToken);
        var buffer = result.Buffer;
        try
        {
            if (buffer.Length < PrefixBytes)
            {
                return null;
            }
            var (compressed, length) = ParsePrefix(buffer);
            return compressed ? _maxMessage : Math.Min(length, (long)_maxMessage);
        }
        finally
        {
            // Nothing consumed, nothing examined: grpc-dotnet's first read gets the same bytes.
            body.AdvanceTo(buffer.Start);
        }
    }

    private static (bool Compressed, uint Length) ParsePrefix(in ReadOnlySequence<byte> buffer)
    {
        Span<byte> prefix = stackalloc byte[PrefixBytes];
        buffer.Slice(0, PrefixBytes).CopyTo(prefix);
        return (prefix[0] != 0, BinaryPrimitives.ReadUInt32BigEndian(prefix[1..]));
    }

    /// <summary>A trailers-only gRPC response: RESOURCE_EXHAUSTED with a message a client can act on.</summary>
    private static void Refuse(HttpResponse response, long used)
    {
        var mib = Math.Ceiling(used / (1024.0 * 1024.0)).ToString("0", CultureInfo.InvariantCulture);
        TrailersOnly.Write(response, global::Grpc.Core.StatusCode.ResourceExhausted, $"server busy: {mib} MiB of requests in flight; retry");
    }

    public void Dispose() => _line.Dispose();
}
