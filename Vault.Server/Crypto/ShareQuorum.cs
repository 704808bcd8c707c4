using System.Security.Cryptography;

namespace Vault.Server.Crypto;

/// <summary>
/// Key shares given one at a time by different operators towards one operation (an unseal, a new
/// root token), kept in memory only until the threshold is reached, a reset, or
/// <see cref="Timeout"/> after the first of them. The shares are zeroed when they are forgotten.
/// </summary>
internal sealed class ShareQuorum(TimeProvider clock)
{
    /// <summary>How long shares are kept before they must be given again.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);

    /// <summary>A share's length: a 32-byte key and its x coordinate.</summary>
    public const int ShareLength = 33;

    private readonly Lock _lock = new();
    private readonly List<byte[]> _shares = [];
    private DateTimeOffset _started;

    /// <summary>What the operation was started with (the one-time pad of a new root token), or null.</summary>
    public byte[]? Attempt { get; private set; }

    /// <summary>Shares given so far (after dropping them if they have expired).</summary>
    /// <param name="expired">Set when shares were dropped just now for having waited too long.</param>
    public int Count(out bool expired)
    {
        lock (_lock)
        {
            expired = ExpireLocked();
            return _shares.Count;
        }
    }

    /// <summary>Starts an operation carrying <paramref name="attempt"/>, forgetting any before it.</summary>
    public void Start(byte[] attempt)
    {
        lock (_lock)
        {
            ClearLocked();
            Attempt = attempt;
            _started = clock.GetUtcNow();
        }
    }

    public void Reset()
    {
        lock (_lock)
        {
            ClearLocked();
        }
    }

    /// <summary>Adds a share; once <paramref name="threshold"/> are given, returns them all (the caller combines and zeroes them) and forgets them.</summary>
    /// <exception cref="ValidationException">Not a share (length, x = 0), or the same share again.</exception>
    public List<byte[]>? Add(byte[] share, int threshold)
    {
        lock (_lock)
        {
            ExpireLocked();
            if (share.Length != ShareLength || share[^1] == 0)
            {
                throw new ValidationException("share", "is not a key share of this vault (a share is 33 bytes, base64)");
            }
            if (_shares.Any(given => given[^1] == share[^1]))
            {
                throw new ValidationException("share", $"this share was already given ({_shares.Count} of {threshold} so far)");
            }
            if (_shares.Count == 0 && Attempt is null)
            {
                _started = clock.GetUtcNow();
            }
            _shares.Add((byte[])share.Clone());
            if (_shares.Count < threshold)
            {
                return null;
            }
            List<byte[]> quorum = [.. _shares];
            // Whatever the outcome, these shares (and the attempt) are used up: a failure starts over.
            _shares.Clear();
            if (Attempt is not null)
            {
                CryptographicOperations.ZeroMemory(Attempt);
                Attempt = null;
            }
            return quorum;
        }
    }

    /// <summary>Combines a quorum <see cref="Add"/> returned into the key, zeroing the shares.</summary>
    public static byte[] Combine(List<byte[]> quorum)
    {
        try
        {
            return Shamir.Combine(quorum);
        }
        finally
        {
            foreach (var share in quorum)
            {
                CryptographicOperations.ZeroMemory(share);
            }
        }
    }

    private bool ExpireLocked()
    {
        if ((_shares.Count > 0 || Attempt is not null) && clock.GetUtcNow() - _started > Timeout)
        {
            ClearLocked();
            return true;
        }
        return false;
    }

    private void ClearLocked()
    {
        foreach (var share in _shares)
        {
            CryptographicOperations.ZeroMemory(share);
        }
        _shares.Clear();
        if (Attempt is not null)
        {
            CryptographicOperations.ZeroMemory(Attempt);
            Attempt = null;
        }
    }
}
