using System.Text;
using Microsoft.Extensions.Logging;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Idempotency;

/// <summary>
/// Writes a client may repeat safely: which methods honour <c>vault-idempotency-key</c>, the
/// <see cref="IdempotentCall"/> of a keyed request, and the reaper pass that forgets answers once
/// no client can still be repeating their call (<see cref="Window"/>).
/// <para>
/// A method honours a key only if the unit of work that makes its change records its answer
/// (<see cref="IdempotentCall.Once{T}"/>); a key sent to any other method is refused rather than
/// ignored, so no client believes a repeat safe that is not.
/// </para>
/// </summary>
public sealed class IdempotentWrites(IVaultStore store, SecurityBarrier barrier, TimeProvider clock, ILogger<IdempotentWrites> logger) : IReaperPass
{
    public const string Header = "vault-idempotency-key";

    /// <summary>
    /// The trailer of an answer to a keyed call: the node that made it honoured the key. A client
    /// repeats keyed writes only once it has seen it (a node from before keys ignores them).
    /// </summary>
    public const string HonouredTrailer = "vault-idempotency";

    /// <summary>How long an answer is kept: far longer than a client goes on repeating a call (its deadline).</summary>
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(10);

    /// <summary>The methods that honour a key: what applications call to write.</summary>
    public static IReadOnlySet<string> Methods { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "vault.v1.KvService/Put",
        "vault.v1.KvService/Delete",
        "vault.v1.KvService/Undelete",
        "vault.v1.KvService/Destroy",
        "vault.v1.LeaseService/IssueCredential",
        "vault.v1.LeaseService/RenewLease",
"vault.v1.LeaseService/RevokeLease",
"vault.v1.LeaseService/CheckoutAccount",
"vault.v1.LeaseService/LeaseStaticCredential",
    };

    /// <summary>The keyed call of <paramref name="method"/> by the token <paramref name="accessor"/>.</summary>
    /// <exception cref="ValidationException">The key is malformed, or the method does not honour one.</exception>
    public IdempotentCall Begin(string method, string key, string accessor, ReadOnlySpan<byte> request)
    {
        RequireHonoured(method);
        if (key.Length is < 16 or > 128 || !key.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
        {
            throw new ValidationException(Header, "must be 16 to 128 characters of letters, digits, '-' and '_' (a random value per write, the same when it is sent again)");
        }
        var id = Convert.ToHexStringLower(barrier.Hmac(IdempotentWritesPurpose, Encoding.UTF8.GetBytes($"{accessor}\n{key}")));
        var prefix = Encoding.UTF8.GetBytes(method + "\n");
        var message = new byte[prefix.Length + request.Length];
        prefix.CopyTo(message, 0);
        request.CopyTo(message.AsSpan(prefix.Length));
        var fingerprint = Convert.ToHexStringLower(barrier.Hmac(IdempotentWritesPurpose, message));
        return new IdempotentCall(id, fingerprint, barrier, clock);
    }

    private const string IdempotentWritesPurpose = "idempotency";

    /// <exception cref="ValidationException"><paramref name="method"/> does not honour a key.</exception>
    public static void RequireHonoured(string method)
    {
        if (!Methods.Contains(method))
        {
            throw new ValidationException(Header, $"{method} does not take one (only {string.Join(", ", Methods.Order(StringComparer.Ordinal))} do)");
        }
    }

    /// <summary>Whether <paramref name="call"/>'s answer is recorded: it is a repeat of a write that was made.</summary>
    public bool Answered(IdempotentCall call) => call.Recorded(store) is not null;

    /// <summary>Makes <paramref name="call"/> the keyed write of the current asynchronous flow.</summary>
    public static void Use(IdempotentCall? call) => IdempotentCall.Current = call;

    internal static RecordIdentity Identity(string id, IdempotencyRecord record) =>
        new("idempotency", $"{id}\n{record.Fingerprint}", record.CreatedAtUnixMs);

    // When the last sweep ran: answers are kept at least the window, so once a minute is enough,
    // and a busy vault holds many (every keyed write of the last ten minutes).
    private DateTimeOffset _swept = DateTimeOffset.MinValue;

    /// <summary>Forgets the answers older than <see cref="Window"/>, at most once a minute.</summary>
    public async Task ReapAsync(CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        if (now - _swept < TimeSpan.FromMinutes(1))
        {
            return;
        }
        _swept = now;
        var before = (now - Window).ToUnixTimeMilliseconds();
        // A page at a time, holding nothing up (there may be hundreds of thousands).
        var expired = store.Scan<IdempotencyRecord>(Collections.Idempotency)
            .Where(r => r.Value.CreatedAtUnixMs < before).Select(r => r.Key).ToList();
        foreach (var batch in expired.Chunk(500))
        {
            await store.WriteAsync(tx =>
            {
                foreach (var id in batch)
                {
                    // Unless written again meanwhile (it never is: the id is the caller's and the key's).
                    if (tx.Get<IdempotencyRecord>(Collections.Idempotency, id) is { } record && record.CreatedAtUnixMs < before)
                    {
                        tx.Delete(Collections.Idempotency, id);
                    }
                }
                return 0;
            }, cancellationToken);
        }
        if (expired.Count > 0)
        {
            IdempotencyLog.Forgotten(logger, expired.Count);
        }
    }

    /// <summary>Decrypts every recorded answer (a backup's or a migration's check); how many.</summary>
    /// <exception cref="DataIntegrityException">An answer was altered or moved.</exception>
    internal static long DecryptAll(IStoreReader store, SecurityBarrier barrier)
    {
        long count = 0;
        foreach (var (id, record) in store.List<IdempotencyRecord>(Collections.Idempotency, ""))
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(
                barrier.Decrypt(Identity(id, record), new SealedValue(record.KekVersion, record.WrappedDataKey, record.Answer)));
            count++;
        }
        return count;
    }
}

internal static partial class IdempotencyLog
{
    [LoggerMessage(EventId = 9001, Level = LogLevel.Debug, Message = "forgot {Count} answers of idempotent writes older than the window")]
    public static partial void Forgotten(ILogger logger, int count);
}
