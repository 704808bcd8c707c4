using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Vault.Server.Hosting;
using Vault.Server.Storage;

namespace Vault.Server.Cluster;

/// <summary>
/// Routes each vault call on a node of several. A read (a method that changes nothing: <c>Get…</c>,
/// <c>List…</c>, <c>Lookup…</c>, <c>Tail…</c>, <c>Status</c>, <c>Verify</c>, <c>Hash</c>) and the
/// node's own seal and unseal are served here, from this node's image; every other call is
/// forwarded, as it came, to the active node — so a client may talk to any node.
/// <para>
/// <b>Read-your-writes.</b> Every answer carries the commit index of the node that made it
/// (<c>vault-index</c>); a call that presents one (<c>vault-min-index</c>: the client sends the
/// newest it saw) is served only once this node's reads see that commit, at most
/// <see cref="ClusterOptions.ReadIndexWait"/>, else UNAVAILABLE (the client tries another node).
/// </para>
/// <para>
/// <b>Forwarding</b> buffers the request (one message: no vault call streams its request) and
/// sends it again only when it was never delivered — the active node could not be reached, or
/// answered that it is no longer active before doing anything — once the next active is known.
/// </para>
/// </summary>
public sealed class WriteForwarding(NodeRole role, IVaultStore store, Crypto.SecurityBarrier barrier, TimeProvider clock, IOptions<ClusterOptions> options, ILogger<WriteForwarding> logger) : IDisposable
{
    public const string IndexHeader = "vault-index";
    public const string MinIndexHeader = "vault-min-index";
    private const string ForwardedHeader = "vault-forwarded-by";
    private const string NotActiveHeader = "vault-not-active";

    private static readonly HashSet<string> Skipped = new(StringComparer.OrdinalIgnoreCase) { "host", "connection", "te", "content-length", "keep-alive", "transfer-encoding", "upgrade" };

    private readonly HttpMessageInvoker _client = new(Handler(options.Value));

    private static SocketsHttpHandler Handler(ClusterOptions options)
    {
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            ConnectTimeout = TimeSpan.FromSeconds(5),
            // A node that stopped answering (paused, cut off) is noticed on an idle connection too.
            KeepAlivePingDelay = TimeSpan.FromSeconds(5),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
        };
        if (options.CaFile is { Length: > 0 } caFile)
        {
            // The nodes' certificates come from a private CA: trust it, and only it, for them.
            var roots = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
            roots.ImportFromPemFile(caFile);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null || (errors & ~System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors) != 0)
                {
                    return false;
                }
                using var chain = new System.Security.Cryptography.X509Certificates.X509Chain();
                chain.ChainPolicy.TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(roots);
                chain.ChainPolicy.RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
                return chain.Build(new System.Security.Cryptography.X509Certificates.X509Certificate2(certificate));
            };
        }
        return handler;
    }

    /// <summary>Whether a vault method is served by whichever node receives it.</summary>
    public static bool ServedHere(string method) =>
        method is "Status" or "Verify" or "Hash" or "Unseal" or "Seal"
        || method.StartsWith("Get", StringComparison.Ordinal) || method.StartsWith("List", StringComparison.Ordinal)
        || method.StartsWith("Lookup", StringComparison.Ordinal) || method.StartsWith("Tail", StringComparison.Ordinal);

    public async Task InvokeAsync(HttpContext context, Func<Task> next)
    {
        var path = context.Request.Path.Value ?? "";
        if (!path.StartsWith("/vault.v1.", StringComparison.OrdinalIgnoreCase))
        {
            await next();
            return;
        }
        var method = path[(path.LastIndexOf('/') + 1)..];
        if (role.IsActive || ServedHere(method))
        {
            if (!role.IsActive && context.Request.Headers.ContainsKey(ForwardedHeader) && !ServedHere(method))
            {
                NotActive(context);
                return;
            }
            // Read-your-writes concerns reads; the active node's writes start from its newest state.
            if (ServedHere(method) && long.TryParse(context.Request.Headers[MinIndexHeader], out var wanted) && wanted > store.CommitIndex
                && !await store.WaitForIndexAsync(wanted, options.Value.ReadIndexWait, context.RequestAborted))
            {
                Unavailable(context, $"this node has not yet seen commit {wanted} (it is at {store.CommitIndex}); try another node");
                return;
            }
            await ServeHereAsync(context, next);
            return;
        }
        if (context.Request.Headers.ContainsKey(ForwardedHeader))
        {
            // Sent here as the active node, which this one is not (any more): the sender tries the next.
            NotActive(context);
            return;
        }
        await ForwardAsync(context, next);
    }

    /// <summary>Serves the call on this node; its answer carries this node's commit index.</summary>
    private Task ServeHereAsync(HttpContext context, Func<Task> next)
    {
        context.Response.OnStarting(() =>
        {
            if (!context.Response.Headers.ContainsKey(IndexHeader))
            {
                context.Response.Headers[IndexHeader] = store.CommitIndex.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            return Task.CompletedTask;
        });
        return next();
    }

    private async Task ForwardAsync(HttpContext context, Func<Task> next)
    {
        var limit = options.Value.MaxMessageBytes + 64 * 1024;
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
        {
            if (buffer.Length + read > limit)
            {
                TrailersOnly.Write(context.Response, global::Grpc.Core.StatusCode.ResourceExhausted, "request: larger than the largest message a node accepts");
                return;
            }
            buffer.Write(chunk, 0, read);
        }
        var body = buffer.TryGetBuffer(out var segment) ? segment : new ArraySegment<byte>(buffer.ToArray());
        // A write may wait for the next active node (two terms at most), but only while it is
        // certain the write was never delivered.
        var deadline = DateTime.UtcNow + (2 * options.Value.LeaseTtl);
        string? tried = null;
        var retryAt = DateTime.MinValue;
        while (true)
        {
            var address = role.ActiveAddress;
            // Not to itself (a term it holds but may no longer use), and the same address again only after a pause.
            if (address is null || address == role.OwnAddress || (address == tried && DateTime.UtcNow < retryAt) || role.IsActive)
            {
                if (role.IsActive)
                {
                    // This node took over while the call waited: it was delivered nowhere, so it is served here.
                    context.Request.Body = new MemoryStream(body.Array!, body.Offset, body.Count, writable: false);
                    await ServeHereAsync(context, next);
                    return;
                }
                if (DateTime.UtcNow >= deadline)
                {
                    Unavailable(context, tried is null ? "no node is active (are the nodes unsealed?); try again" : $"the active node at {tried} did not answer and no other took over yet; try again");
                    return;
                }
                await Task.Delay(100, context.RequestAborted);
                continue;
            }
            using var request = Request(context, address, body);
            HttpResponseMessage response;
            try
            {
                response = await _client.SendAsync(request, context.RequestAborted);
            }
            catch (HttpRequestException ex) when (ex.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError)
            {
                // Never delivered: the connection (or its handshake) was not made.
                ClusterLog.ForwardFailed(logger, address, ex.Message);
                tried = address;
                retryAt = DateTime.UtcNow.AddMilliseconds(500);
                continue;
            }
            catch (TaskCanceledException ex) when (ex.InnerException is TimeoutException && !context.RequestAborted.IsCancellationRequested)
            {
                // The connect timeout: never delivered either.
                ClusterLog.ForwardFailed(logger, address, ex.Message);
                tried = address;
                retryAt = DateTime.UtcNow.AddMilliseconds(500);
                continue;
            }
            catch (HttpRequestException ex)
            {
                ClusterLog.ForwardFailed(logger, address, ex.Message);
                Unavailable(context, $"the active node at {address} went away during the call, which may or may not have been made");
                return;
            }
            using (response)
            {
                if (response.Headers.Contains(NotActiveHeader))
                {
                    tried = address;
                    retryAt = DateTime.UtcNow.AddMilliseconds(500);
                    continue;
                }
                await RelayAsync(context, response);
                return;
            }
        }
    }

    private HttpRequestMessage Request(HttpContext context, string address, ArraySegment<byte> body)
    {
        var scheme = options.Value.Tls ? "https" : "http";
        var request = new HttpRequestMessage(HttpMethod.Post, $"{scheme}://{address}{context.Request.Path}{context.Request.QueryString}")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(body.Array!, body.Offset, body.Count),
        };
        foreach (var (name, values) in context.Request.Headers)
        {
            if (name.StartsWith(':') || Skipped.Contains(name) || name.Equals(ForwardedHeader, StringComparison.OrdinalIgnoreCase) || name.StartsWith("vault-forwarded-", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }
            if (!request.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values))
            {
                request.Content.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
            }
        }
        request.Headers.TryAddWithoutValidation("te", "trailers");
        request.Headers.TryAddWithoutValidation(ForwardedHeader, role.NodeId);
        // Whose call it is, for the rules that look at the caller's address (ClientAddress).
        foreach (var (name, value) in ClientAddress.Vouch(context.Connection.RemoteIpAddress, context.Request.Path, role.NodeId!, barrier, clock.GetUtcNow()))
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        return request;
    }

    private static async Task RelayAsync(HttpContext context, HttpResponseMessage response)
    {
        context.Response.StatusCode = (int)response.StatusCode;
        foreach (var (name, values) in response.Headers.Concat(response.Content.Headers))
        {
            if (!Skipped.Contains(name))
            {
                context.Response.Headers[name] = values.ToArray();
            }
        }
        await using (var stream = await response.Content.ReadAsStreamAsync(context.RequestAborted))
        {
            var chunk = new byte[16 * 1024];
            int read;
            while ((read = await stream.ReadAsync(chunk, context.RequestAborted)) > 0)
            {
                await context.Response.Body.WriteAsync(chunk.AsMemory(0, read), context.RequestAborted);
                // Streams (events, watches, backups) pass on as they come.
                await context.Response.Body.FlushAsync(context.RequestAborted);
            }
        }
        foreach (var (name, values) in response.TrailingHeaders)
        {
            context.Response.AppendTrailer(name, values.ToArray());
        }
    }

    private static void NotActive(HttpContext context)
    {
        context.Response.Headers[NotActiveHeader] = "1";
        Unavailable(context, "this node is not the active one; try again");
    }

    private static void Unavailable(HttpContext context, string message) => TrailersOnly.Write(context.Response, global::Grpc.Core.StatusCode.Unavailable, message);

    public void Dispose() => _client.Dispose();
}
