using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Vault.Server.Crypto;
using Vault.Server.Storage;

namespace Vault.Server.Idempotency;

/// <summary>
/// A write its client may send again under the same key (<c>vault-idempotency-key</c>): the call
/// went to a node that died, or the connection broke, before its answer arrived, and the client
/// cannot know whether it was made. The unit of work that makes the change records the answer it
/// gives (<see cref="Once{T}"/>) in the same commit, so there is no moment at which the change is
/// made and its answer lost: a repeat finds the answer and is given it again, changing nothing.
/// <para>
/// Set by the interceptor for the methods that honour a key (<see cref="IdempotentWrites.Methods"/>)
/// and flowing with the request, as <see cref="CommitContext"/> does. The record is keyed by an
/// HMAC of the caller's token accessor and the key, so one caller's key never finds another's
/// answer; the answer is sealed (an issued credential's password is in it) and bound to the
/// request's fingerprint, so a key sent again with a different request is refused.
/// </para>
/// </summary>
public sealed class IdempotentCall
{
    private static readonly AsyncLocal<IdempotentCall?> Ambient = new();
    private readonly SecurityBarrier _barrier;
    private readonly TimeProvider _clock;
    private int _recorded;

    internal IdempotentCall(string id, string fingerprint, SecurityBarrier barrier, TimeProvider clock)
    {
        Id = id;
        Fingerprint = fingerprint;
        _barrier = barrier;
        _clock = clock;
    }

    /// <summary>The keyed write of the current asynchronous flow, if any.</summary>
    public static IdempotentCall? Current
    {
        get => Ambient.Value;
        internal set => Ambient.Value = value;
    }

    /// <summary>The record's id: an HMAC of the caller's accessor and the key.</summary>
    public string Id { get; }

    /// <summary>An HMAC of the method and the request as sent.</summary>
    public string Fingerprint { get; }

    /// <summary>
    /// <paramref name="work"/> as the unit of work of the current keyed call: it records its answer
    /// in the unit, or, when this call's answer is recorded already (the client's repeat), returns
    /// that answer and changes nothing. Outside a keyed call it is <paramref name="work"/> itself.
    /// The call is taken from the request's flow here, since the unit runs on the store's writer
    /// thread. One unit per call records: a second in the same call just runs its work.
    /// </summary>
    /// <exception cref="ValidationException">(From the unit) the key was sent before with a different request.</exception>
    public static Func<IStoreWriter, T> Once<T>(Func<IStoreWriter, T> work, JsonTypeInfo<T> answerType)
    {
        if (Current is not { } call)
        {
            return work;
        }
        return tx =>
        {
            if (Volatile.Read(ref call._recorded) != 0)
            {
                return work(tx);
            }
            if (call.Answered(tx, answerType, out var prior))
            {
                return prior;
            }
            var answer = work(tx);
            call.Record(tx, answer, answerType);
            return answer;
        };
    }

    /// <summary>
    /// The answer recorded for the current keyed call, if any: for a write that does work outside
    /// the store before its unit (creating a database user), so a repeat does not do it again.
    /// </summary>
    /// <exception cref="ValidationException">The key was sent before with a different request.</exception>
    public static bool TryPrior<T>(IStoreReader reader, JsonTypeInfo<T> answerType, out T prior)
    {
        prior = default!;
        return Current is { } call && Volatile.Read(ref call._recorded) == 0 && call.Answered(reader, answerType, out prior);
    }

    /// <summary>The record of this call's answer, if this very request was answered before (null: never, or another request under the key).</summary>
    internal IdempotencyRecord? Recorded(IStoreReader reader) =>
        reader.Get<IdempotencyRecord>(Collections.Idempotency, Id) is { } record && string.Equals(record.Fingerprint, Fingerprint, StringComparison.Ordinal) ? record : null;

    private bool Answered<T>(IStoreReader reader, JsonTypeInfo<T> answerType, out T answer)
    {
        answer = default!;
        if (Recorded(reader) is not { } record)
        {
            if (reader.Get<IdempotencyRecord>(Collections.Idempotency, Id) is not null)
            {
                throw new ValidationException(IdempotentWrites.Header, "was sent before with a different request; a new request needs a new key");
            }
            return false;
        }
        var plaintext = _barrier.Decrypt(IdempotentWrites.Identity(Id, record), new SealedValue(record.KekVersion, record.WrappedDataKey, record.Answer));
        try
        {
            answer = JsonSerializer.Deserialize(plaintext, answerType) ?? throw new DataIntegrityException($"the recorded answer of idempotent write '{Id}' is empty");
            return true;
        }
        catch (JsonException ex)
        {
            throw new DataIntegrityException($"the recorded answer of idempotent write '{Id}' is not of this method ({ex.Message})");
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    private void Record<T>(IStoreWriter tx, T answer, JsonTypeInfo<T> answerType)
    {
        var plaintext = JsonSerializer.SerializeToUtf8Bytes(answer, answerType);
        try
        {
            var record = new IdempotencyRecord { Fingerprint = Fingerprint, CreatedAtUnixMs = _clock.GetUtcNow().ToUnixTimeMilliseconds() };
            var sealedAnswer = _barrier.Encrypt(IdempotentWrites.Identity(Id, record), plaintext);
            record.KekVersion = sealedAnswer.KekVersion;
            record.WrappedDataKey = sealedAnswer.WrappedDataKey;
            record.Answer = sealedAnswer.Ciphertext;
            tx.Put(Collections.Idempotency, Id, record);
            Volatile.Write(ref _recorded, 1);
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(plaintext);
        }
    }
}
