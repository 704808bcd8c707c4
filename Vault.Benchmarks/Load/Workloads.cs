using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Benchmarks.Echo;
using Vault.Protocol.V1;

namespace Vault.Benchmarks.Load;

// Requests are built once before the run and shared by every client (serialising a message only
// reads it), so the client side spends its time in the transport, not in building messages.

/// <summary>The echo service: <c>payload</c> bytes each way, an authorization header like the vault calls'.</summary>
internal sealed class EchoWorkload(EchoService.EchoServiceClient client, int payloadBytes, Metadata headers) : IWorkload
{
    private readonly EchoRequest _request = new() { Payload = ByteString.CopyFrom(new byte[payloadBytes]) };

    public Task CallAsync(int clientIndex, Random random, CancellationToken cancellationToken) =>
        client.EchoAsync(_request, headers, cancellationToken: cancellationToken).ResponseAsync;
}

/// <summary>kv-get: the latest version of a random path among the pre-written secrets.</summary>
internal sealed class KvGetWorkload(KvService.KvServiceClient client, IReadOnlyList<string> paths, Metadata headers) : IWorkload
{
    private readonly GetSecretRequest[] _requests = [.. paths.Select(p => new GetSecretRequest { Path = p })];

    public Task CallAsync(int clientIndex, Random random, CancellationToken cancellationToken) =>
        client.GetAsync(_requests[random.Next(_requests.Length)], headers, cancellationToken: cancellationToken).ResponseAsync;
}

/// <summary>kv-put: a new version of a random path (acknowledged only once durable).</summary>
internal sealed class KvPutWorkload(KvService.KvServiceClient client, IReadOnlyList<string> paths, string value, Metadata headers) : IWorkload
{
    private readonly PutSecretRequest[] _requests = [.. paths.Select(p => SecretPayload.PutRequest(p, value))];

    public Task CallAsync(int clientIndex, Random random, CancellationToken cancellationToken) =>
        client.PutAsync(_requests[random.Next(_requests.Length)], headers, cancellationToken: cancellationToken).ResponseAsync;
}

/// <summary>token-lookup: TokenService.Lookup with an empty accessor, i.e. the calling token itself.</summary>
internal sealed class TokenLookupWorkload(TokenService.TokenServiceClient client, Metadata headers) : IWorkload
{
    private readonly LookupTokenRequest _request = new();

    public Task CallAsync(int clientIndex, Random random, CancellationToken cancellationToken) =>
        client.LookupAsync(_request, headers, cancellationToken: cancellationToken).ResponseAsync;
}

/// <summary>
/// lease-checkout: LeaseService.LeaseStaticCredential of one rotation target: the vault writes a
/// lease <c>static/&lt;target&gt;/&lt;random&gt;</c> durably and answers with the target's current
/// username and password.
/// </summary>
internal sealed class LeaseCheckoutWorkload(LeaseService.LeaseServiceClient client, string target, TimeSpan ttl, Metadata headers) : IWorkload
{
    private readonly LeaseStaticCredentialRequest _request = new() { Target = target, Ttl = Duration.FromTimeSpan(ttl) };

    public async Task CallAsync(int clientIndex, Random random, CancellationToken cancellationToken)
    {
        var issued = await client.LeaseStaticCredentialAsync(_request, headers, cancellationToken: cancellationToken);
        if (issued.Password.Length == 0 || issued.Lease is null)
        {
            throw new WorkloadException($"lease of {target}'s credential came back without a password or a lease");
        }
    }
}

/// <summary>
/// rotate: RotateTarget of the client's own PostgreSQL target (client i rotates target i), since
/// rotations of one target are serialised. A rotation that failed is answered OK with the failure
/// in its event: that counts as an error here.
/// </summary>
internal sealed class RotateWorkload(TargetService.TargetServiceClient client, IReadOnlyList<string> targets, Metadata headers) : IWorkload
{
    private readonly RotateTargetRequest[] _requests = [.. targets.Select(t => new RotateTargetRequest { Name = t })];

    public async Task CallAsync(int clientIndex, Random random, CancellationToken cancellationToken)
    {
        var response = await client.RotateTargetAsync(_requests[clientIndex], headers, cancellationToken: cancellationToken);
        if (response.Event?.Outcome != RotationOutcome.Succeeded)
        {
            throw new WorkloadException($"rotation of {_requests[clientIndex].Name}: {response.Event?.Outcome.ToString() ?? "no event"} at step '{response.Event?.Step}': {response.Event?.Reason}");
        }
    }
}

/// <summary>The shape of a benchmark secret: one key whose value is the payload.</summary>
internal static class SecretPayload
{
    public static string Value(int bytes) => string.Create(bytes, 0, static (span, _) =>
    {
        for (var i = 0; i < span.Length; i++)
        {
            span[i] = (char)('a' + (i % 26));
        }
    });

    public static PutSecretRequest PutRequest(string path, string value) => new() { Path = path, Data = { ["value"] = value } };
}
