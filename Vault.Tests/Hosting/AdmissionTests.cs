using System.Buffers.Binary;
using System.Net;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Vault.Protocol.V1;
using Vault.Server.Hosting;
using Vault.Server.Storage;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Hosting;

/// <summary>
/// Admission is bounded in bytes: request messages being handled plus the store's backlog. The
/// load here is real: raw HTTP/2 gRPC requests whose prefix declares a large message and whose
/// body then stalls, so the server holds them admitted until the test lets them go.
/// </summary>
public sealed class AdmissionTests
{
    // The least the server accepts with the default 1 MiB value limit: twice the 4 MiB message limit.
    private const long Bound = 8L * 1024 * 1024;
    // Two of these fill the three quarters of the bound large requests may use, but for 344 KiB
    // (room for the few KiB of store backlog init leaves until the applier's next pass).
    private const int StalledMessageBytes = 2900 * 1024;

    [Fact]
    public async Task LargePut_BeyondTheBound_IsResourceExhausted_ChangesNothing_AndIsAdmittedOnceTheLoadIsGone()
    {
        await using var vault = await TestVault.StartInitializedAsync($"--Vault:MaxInFlightBytes={Bound}", "--Vault:AdmissionQueueTimeout=00:00:00");
        var path = $"admission/{Guid.NewGuid():N}";
        var big = new PutSecretRequest { Path = path, Data = { ["value"] = new string('x', 512 * 1024) } };

        await using (var load = await StalledUploads.StartAsync(vault, count: 2))
        {
            var refused = await Assert.ThrowsAsync<RpcException>(() => vault.Kv.PutAsync(big, vault.As()).ResponseAsync);
            Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
            Assert.Matches(@"^server busy: \d+ MiB of requests in flight; retry$", refused.Status.Detail);
            Assert.DoesNotContain("xxxx", refused.Status.Detail, StringComparison.Ordinal);

            var missing = await Assert.ThrowsAsync<RpcException>(() => vault.Kv.GetAsync(new GetSecretRequest { Path = path }, vault.As()).ResponseAsync);
            Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        }

        await WaitUntilAsync(() => vault.Services.GetRequiredService<RequestAdmission>().InFlightBytes == 0);
        var put = await vault.Kv.PutAsync(big, vault.As());
        Assert.Equal(1UL, put.Version);
        var read = await vault.Kv.GetAsync(new GetSecretRequest { Path = path }, vault.As());
        Assert.Equal(512 * 1024, read.Data["value"].Length);
    }

    [Fact]
    public async Task SmallRequests_AreAdmitted_WhileLargeOnesAreRefused()
    {
        await using var vault = await TestVault.StartInitializedAsync($"--Vault:MaxInFlightBytes={Bound}", "--Vault:AdmissionQueueTimeout=00:00:00");
        var path = $"admission/{Guid.NewGuid():N}";
        await using var load = await StalledUploads.StartAsync(vault, count: 2);

        var large = await Assert.ThrowsAsync<RpcException>(() =>
            vault.Kv.PutAsync(new PutSecretRequest { Path = path + "/large", Data = { ["value"] = new string('x', 512 * 1024) } }, vault.As()).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, large.StatusCode);

        var small = await vault.Kv.PutAsync(new PutSecretRequest { Path = path, Data = { ["password"] = "small and admitted" } }, vault.As());
        Assert.Equal(1UL, small.Version);
        var read = await vault.Kv.GetAsync(new GetSecretRequest { Path = path }, vault.As());
        Assert.Equal("small and admitted", read.Data["password"]);
        var status = await vault.System.StatusAsync(new StatusRequest());
        Assert.False(status.Sealed);
    }

    [Fact]
    public async Task LargePut_BeyondTheBound_WaitsInLine_AndIsAdmittedWhenRoomIsMade()
    {
        await using var vault = await TestVault.StartInitializedAsync($"--Vault:MaxInFlightBytes={Bound}", "--Vault:AdmissionQueueTimeout=00:05:00");
        var path = $"admission/{Guid.NewGuid():N}";
        var load = await StalledUploads.StartAsync(vault, count: 2);
        Task<PutSecretResponse> queued;
        try
        {
            queued = vault.Kv.PutAsync(new PutSecretRequest { Path = path, Data = { ["value"] = new string('q', 512 * 1024) } }, vault.As()).ResponseAsync;
            // Small requests pass the waiting large one.
            var small = await vault.Kv.PutAsync(new PutSecretRequest { Path = path + "/small", Data = { ["k"] = "v" } }, vault.As());
            Assert.Equal(1UL, small.Version);
            Assert.False(queued.IsCompleted);
        }
        finally
        {
            await load.DisposeAsync();
        }
        var put = await queued;
        Assert.Equal(1UL, put.Version);
        Assert.Equal(512 * 1024, (await vault.Kv.GetAsync(new GetSecretRequest { Path = path }, vault.As())).Data["value"].Length);
    }

    [Fact]
    public void AdmissionQueueTimeout_OutOfRange_RefusesToStart()
    {
        var dir = Directory.CreateTempSubdirectory("vault-admission-").FullName;
        var ex = Assert.Throws<OptionsValidationException>(() => VaultServerHost.Build(["--data-dir", dir, "--listen", "127.0.0.1:0", "--Vault:AdmissionQueueTimeout=01:00:00"],
            builder => builder.Logging.ClearProviders()));
        Assert.Contains("AdmissionQueueTimeout", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PendingBytes_CountsUnappliedDocuments_ReplacedOnes_AndDropsToZeroOnceApplied()
    {
        var dir = Directory.CreateTempSubdirectory("vault-admission-").FullName;
        using var store = new LiteDbStore(dir, NullLogger<LiteDbStore>.Instance, [typeof(Blob)], ["blobs"], LiteDbStore.DefaultCacheBytes, TimeSpan.FromHours(1));
        Assert.Equal(0, store.PendingBytes);

        await store.WriteAsync(tx =>
        {
            tx.Put("blobs", "a", new Blob { Bytes = new byte[256 * 1024] });
            return true;
        }, CancellationToken.None);
        Assert.InRange(store.PendingBytes, 256 * 1024, (256 * 1024) + 1024);

        await store.WriteAsync(tx =>
        {
            tx.Put("blobs", "a", new Blob { Bytes = new byte[64 * 1024] });
            tx.Put("blobs", "b", new Blob { Bytes = new byte[32 * 1024] });
            return true;
        }, CancellationToken.None);
        Assert.InRange(store.PendingBytes, 96 * 1024, (96 * 1024) + 2048);

        store.Flush();
        Assert.Equal(0, store.PendingBytes);
        Assert.Equal(64 * 1024, store.Get<Blob>("blobs", "a")!.Bytes.Length);
    }

    [Fact]
    public void MaxInFlightBytes_BelowTwiceTheLargestMessage_RefusesToStart()
    {
        var dir = Directory.CreateTempSubdirectory("vault-admission-").FullName;
        var ex = Assert.Throws<OptionsValidationException>(() => VaultServerHost.Build(["--data-dir", dir, "--listen", "127.0.0.1:0", "--Vault:MaxInFlightBytes=1048576"],
            builder => builder.Logging.ClearProviders()));
        Assert.Contains("Vault:MaxInFlightBytes (1048576) must be at least twice the largest request message", ex.Message, StringComparison.Ordinal);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        // A bound on waiting, not an assertion about time: the condition is what is checked.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (!condition())
        {
            await Task.Delay(20, timeout.Token);
        }
    }

    private sealed class Blob
    {
        public byte[] Bytes { get; set; } = [];
    }

    /// <summary>
    /// KV puts sent as raw HTTP/2 gRPC requests whose prefix declares a 2.8 MiB message, of which
    /// only the first 64 KiB is sent; the rest waits until disposal cancels the requests. The
    /// server admits each one on its prefix and holds it until then.
    /// </summary>
    private sealed class StalledUploads : IAsyncDisposable
    {
        private readonly HttpClient _client;
        private readonly CancellationTokenSource _cancel = new();
        private readonly List<Task> _requests = [];

        private StalledUploads(HttpClient client) => _client = client;

        public static async Task<StalledUploads> StartAsync(TestVault vault, int count)
        {
            var admission = vault.Services.GetRequiredService<RequestAdmission>();
            var uploads = new StalledUploads(new HttpClient(new SocketsHttpHandler { EnableMultipleHttp2Connections = true }));
            for (var i = 0; i < count; i++)
            {
                var request = new HttpRequestMessage(HttpMethod.Post, $"{vault.Address}/vault.v1.KvService/Put")
                {
                    Version = HttpVersion.Version20,
                    VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                    Content = new StalledContent(uploads._cancel.Token),
                };
                request.Headers.TryAddWithoutValidation("te", "trailers");
                request.Headers.TryAddWithoutValidation("authorization", $"Bearer {vault.RootToken}");
                request.Content.Headers.TryAddWithoutValidation("content-type", "application/grpc");
                uploads._requests.Add(uploads._client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, uploads._cancel.Token));
            }
            await WaitUntilAsync(() => admission.InFlightBytes >= (long)count * StalledMessageBytes);
            return uploads;
        }

        public async ValueTask DisposeAsync()
        {
            await _cancel.CancelAsync();
            foreach (var request in _requests)
            {
                try
                {
                    await request;
                }
                catch (Exception ex) when (ex is OperationCanceledException or HttpRequestException)
                {
                    // Cancelled by design.
                }
            }
            _client.Dispose();
            _cancel.Dispose();
        }

        private sealed class StalledContent(CancellationToken stall) : HttpContent
        {
            protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
            {
                var prefix = new byte[5];
                BinaryPrimitives.WriteUInt32BigEndian(prefix.AsSpan(1), StalledMessageBytes);
                await stream.WriteAsync(prefix, stall);
                await stream.WriteAsync(new byte[64 * 1024], stall);
                await stream.FlushAsync(stall);
                await Task.Delay(Timeout.Infinite, stall);
            }

            protected override bool TryComputeLength(out long length)
            {
                length = 0;
                return false;
            }
        }
    }
}
