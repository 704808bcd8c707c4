using System.Collections.Concurrent;
using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Security;

/// <summary>One answered fuzz request.</summary>
/// <param name="Parses">Whether the body is a well-formed encoding of the RPC's request message.</param>
public sealed record FuzzOutcome(FuzzedRequest Request, bool Parses, Status Status)
{
    public override string ToString() =>
        $"#{Request.Index} {DescriptorInvoker.NameOf(Request.Method)} → {Status.StatusCode} \"{Status.Detail}\" for {Request.Description}";
}

/// <summary>
/// Runs the fuzzer once per test class (10,000 requests, 8 at a time, root token) against its own
/// vault, and keeps every outcome for the tests to judge.
/// </summary>
public sealed class FuzzRun : IAsyncLifetime
{
    public const int DefaultSeed = 5_318_008;
    public const int Requests = 10_000;
    private const int Concurrency = 8;

    public int Seed { get; } = Environment.GetEnvironmentVariable("VAULT_FUZZ_SEED") is { Length: > 0 } text
        ? int.Parse(text, CultureInfo.InvariantCulture)
        : DefaultSeed;

    /// <summary>For every failure message: how to replay this run.</summary>
    public string Replay => $"(seed {Seed}; replay with VAULT_FUZZ_SEED={Seed})";

    public TestVault Vault { get; private set; } = null!;

    public IReadOnlyList<FuzzOutcome> Outcomes { get; private set; } = [];

    public string Summary => string.Join(", ", Outcomes.GroupBy(o => o.Status.StatusCode).OrderBy(g => g.Key).Select(g => $"{g.Key}={g.Count()}"));

    public async Task InitializeAsync()
    {
        Vault = await TestVault.StartInitializedAsync();
        // Seal is global: one sealing request would turn the rest of the run into FAILED_PRECONDITION.
        var methods = DescriptorInvoker.AllMethods.Where(m => DescriptorInvoker.NameOf(m) != "vault.v1.SystemService/Seal").ToList();
        var fuzzer = new RequestFuzzer(Seed, methods);
        var invoker = Vault.Channel.CreateCallInvoker();
        var outcomes = new ConcurrentBag<FuzzOutcome>();
        var next = -1;

        async Task WorkAsync()
        {
            int index;
            while ((index = Interlocked.Increment(ref next)) < Requests)
            {
                var request = fuzzer.Next(index);
                var options = Vault.As(await CallerTokenAsync(request)).WithDeadline(DateTime.UtcNow.AddSeconds(60));
                var status = await DescriptorInvoker.StatusOfAsync(() => DescriptorInvoker.CallRawAsync(invoker, request.Method, request.Body, options));
                outcomes.Add(new FuzzOutcome(request, Parses(request), status));
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Concurrency).Select(_ => Task.Run(WorkAsync)));
        Outcomes = [.. outcomes.OrderBy(o => o.Request.Index)];
    }

    public async Task DisposeAsync() => await Vault.DisposeAsync();

    /// <summary>
    /// The root token for everything but Revoke: a revoke with an empty accessor revokes the
    /// caller, so each revoke goes out under a throwaway child of root.
    /// </summary>
    private async Task<string?> CallerTokenAsync(FuzzedRequest request)
    {
        if (DescriptorInvoker.NameOf(request.Method) != "vault.v1.TokenService/Revoke")
        {
            return null;
        }
        var child = await Vault.Tokens.CreateAsync(new CreateTokenRequest { Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(10)) }, Vault.As());
        return child.Token;
    }

    private static bool Parses(FuzzedRequest request)
    {
        try
        {
            request.Method.InputType.Parser.ParseFrom(request.Body);
            return true;
        }
        catch (Google.Protobuf.InvalidProtocolBufferException)
        {
            return false;
        }
    }
}
