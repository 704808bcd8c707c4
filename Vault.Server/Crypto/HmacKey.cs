using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Vault.Server.Crypto;

/// <summary>
/// One purpose's HMAC-SHA256 key, with the contexts keyed with it kept for reuse. A one-shot
/// HMAC sets up a new context each time (with OpenSSL 3: an algorithm fetch under a lock, the
/// key schedule, an error-queue clear), which cost more than hashing the few hundred bytes of a
/// token or an audit entry; a kept context is reset, keeping its key schedule. Contexts are used
/// by one thread at a time and go back to the pool after each value. Disposing zeroes the key and
/// frees every context (callers make sure no one is computing then: the barrier disposes it under
/// its write lock or once the state is unreachable).
/// </summary>
internal sealed class HmacKey(byte[] key) : IDisposable
{
    private readonly ConcurrentBag<IncrementalHash> _contexts = [];
    private bool _disposed;

    public byte[] Compute(ReadOnlySpan<byte> value)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_contexts.TryTake(out var context))
        {
            context = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);
        }
        context.AppendData(value);
        var mac = context.GetHashAndReset();
        _contexts.Add(context);
        return mac;
    }

    public void Dispose()
    {
        _disposed = true;
        CryptographicOperations.ZeroMemory(key);
        while (_contexts.TryTake(out var context))
        {
            context.Dispose();
        }
    }
}
