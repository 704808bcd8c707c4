using System.Security.Cryptography;
using System.Text;
using Vault.Server.Crypto;

namespace Vault.Server.Auth;

/// <summary>What a generate-root step answered: shares given of the threshold, and once done the token under the one-time pad.</summary>
public sealed record RootGeneration(int Progress, int Threshold, string? EncodedToken, string? Accessor);

/// <summary>
/// A new root token from the passphrase or a quorum of key shares, so a vault whose root tokens
/// were all revoked is not lost. The token never crosses the wire in clear: the caller gives a
/// one-time pad (<see cref="PadLength"/> random bytes) and gets back the token XORed with it, so
/// neither the request that carried the pad nor the answer that carries the result reveals the
/// token alone. The audit entry of the step that made it names the new token's accessor and the
/// event <see cref="Event"/>.
/// </summary>
public sealed class RootGenerator(SecurityBarrier barrier, TokenManager tokens, TimeProvider clock)
{
    /// <summary>The audit event of a root token made.</summary>
    public const string Event = "root-generated";

    /// <summary>The pad's length: a token's ("vt_" and 43 base64url characters).</summary>
    public const int PadLength = 46;

    private readonly ShareQuorum _shares = new(clock);

    /// <summary>With the passphrase: checks it, then makes the token at once.</summary>
    /// <exception cref="ValidationException">A pad of the wrong length; a key-share vault.</exception>
    /// <exception cref="UnauthenticatedException">The passphrase is not this vault's.</exception>
    public async Task<RootGeneration> WithPassphraseAsync(string passphrase, byte[] pad, CancellationToken cancellationToken)
    {
        CheckPad(pad);
        var key = await barrier.DeriveUnsealKeyAsync(passphrase, cancellationToken);
        if (!barrier.OpensKeyring(key))
        {
            throw new UnauthenticatedException("generate-root refused: wrong passphrase");
        }
        return await MakeAsync(pad, 0, cancellationToken);
    }

    /// <summary>Key-share mode: starts an attempt with the pad the final token will come under (forgetting any attempt before).</summary>
    /// <exception cref="ValidationException">A pad of the wrong length; a passphrase vault.</exception>
    public RootGeneration Start(byte[] pad)
    {
        CheckPad(pad);
        var threshold = Threshold();
        _shares.Start((byte[])pad.Clone());
        return new RootGeneration(0, threshold, null, null);
    }

    /// <summary>Key-share mode: one operator's share; at the threshold, the token if the shares open the keyring.</summary>
    /// <exception cref="PreconditionException">No attempt was started (or it expired).</exception>
    /// <exception cref="ValidationException">Not a share, or the same share again.</exception>
    /// <exception cref="UnauthenticatedException">The threshold was reached and the shares do not open the keyring (all are forgotten).</exception>
    public async Task<RootGeneration> WithShareAsync(byte[] share, CancellationToken cancellationToken)
    {
        var threshold = Threshold();
        _shares.Count(out _);
        var pad = _shares.Attempt is { } attempt ? (byte[])attempt.Clone() : throw new PreconditionException("no generate-root attempt is in progress: start one with a one-time pad (otp) first");
        try
        {
            if (_shares.Add(share, threshold) is not { } quorum)
            {
                return new RootGeneration(_shares.Count(out _), threshold, null, null);
            }
            if (!barrier.OpensKeyring(ShareQuorum.Combine(quorum)))
            {
                throw new UnauthenticatedException("generate-root refused: the shares given do not open the keyring (one is wrong, damaged or from another vault); start again");
            }
            return await MakeAsync(pad, threshold, cancellationToken);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pad);
        }
    }

    public void Reset() => _shares.Reset();

    private async Task<RootGeneration> MakeAsync(byte[] pad, int threshold, CancellationToken cancellationToken)
    {
        // Named before the write: the request's entry is written with the token's commit.
        if (Audit.AuditScope.Current is { } audit)
        {
            audit.Event = Event;
        }
        var (token, record) = await tokens.CreateRootAsync(cancellationToken);
        var bytes = Encoding.ASCII.GetBytes(token);
        try
        {
            for (var i = 0; i < bytes.Length; i++)
            {
                bytes[i] ^= pad[i];
            }
            return new RootGeneration(threshold, threshold, Convert.ToBase64String(bytes), record.Accessor);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    private int Threshold() =>
        barrier.ShareConfig is { } config ? config.Threshold : throw new ValidationException("share", "this vault uses a passphrase: generate a root token with it, not with shares");

    private static void CheckPad(byte[] pad)
    {
        if (pad.Length != PadLength)
        {
            throw new ValidationException("otp", $"must be {PadLength} random bytes, base64");
        }
    }
}
