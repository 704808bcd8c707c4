using Vault.Protocol.V1;

namespace Vault.Client;

public sealed partial class VaultClient
{
    /// <summary>Initialises a new vault: derives the unseal key from <paramref name="passphrase"/> and creates the root token.</summary>
    /// <param name="passphrase">The operator's passphrase; the only way to unseal the vault later.</param>
    /// <param name="kdf">Argon2id parameters; null uses the server's defaults.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The root token (shown once) and its accessor.</returns>
    /// <exception cref="Grpc.Core.RpcException">FailedPrecondition when already initialised; InvalidArgument for unusable parameters.</exception>
    public async Task<InitResponse> InitAsync(string passphrase, KdfParameters? kdf = null, CancellationToken cancellationToken = default)
    {
        var request = new InitRequest { Passphrase = passphrase, Kdf = kdf };
        return await _system.InitAsync(request, Call(cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Unseals the vault.</summary>
    /// <param name="passphrase">The passphrase given at initialisation.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The status after unsealing.</returns>
    /// <exception cref="Grpc.Core.RpcException">InvalidArgument for a wrong passphrase (the vault stays sealed).</exception>
    public async Task<StatusResponse> UnsealAsync(string passphrase, CancellationToken cancellationToken = default) =>
        await _system.UnsealAsync(new UnsealRequest { Passphrase = passphrase }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Initialises a new vault under dual control: a random unseal key split into key shares (Shamir), any <paramref name="threshold"/> of which unseal.</summary>
    /// <param name="shares">How many shares to make (2 to 255).</param>
    /// <param name="threshold">How many unseal (2 to <paramref name="shares"/>).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The root token and the shares (base64), each shown only this once.</returns>
    /// <exception cref="Grpc.Core.RpcException">InvalidArgument for counts out of range; FailedPrecondition when already initialised.</exception>
    public async Task<InitResponse> InitWithSharesAsync(int shares, int threshold, CancellationToken cancellationToken = default) =>
        await _system.InitAsync(new InitRequest { SecretShares = (uint)Math.Max(0, shares), SecretThreshold = (uint)Math.Max(0, threshold) }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Gives one key share towards unsealing.</summary>
    /// <param name="share">The share, base64, as init returned it.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The status after it: sealed with <c>UnsealProgress</c> shares given, or unsealed.</returns>
    /// <exception cref="Grpc.Core.RpcException">InvalidArgument for a share given twice or not of this vault; Unauthenticated when the threshold was reached and the shares do not open the vault (all are forgotten).</exception>
    public async Task<StatusResponse> UnsealWithShareAsync(string share, CancellationToken cancellationToken = default) =>
        await _system.UnsealAsync(new UnsealRequest { Share = share }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>One step of generating a new root token (needs no token): with the passphrase and a one-time pad; or, in key-share mode, the pad alone to start, then one share per call; or a reset.</summary>
    /// <param name="request">The step.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Progress, and once done the new token XORed with the pad.</returns>
    /// <exception cref="Grpc.Core.RpcException">Unauthenticated for a wrong passphrase or a quorum that does not open the vault; InvalidArgument naming a bad field.</exception>
    public async Task<GenerateRootResponse> GenerateRootAsync(GenerateRootRequest request, CancellationToken cancellationToken = default) =>
        await _system.GenerateRootAsync(request, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Changes the passphrase (rekey of a passphrase vault). Needs <c>update</c> on <c>sys/rekey</c>.</summary>
    /// <param name="passphrase">The current passphrase.</param>
    /// <param name="newPassphrase">The new one.</param>
    /// <param name="cancellationToken">Cancels the call (once the server has derived the new key, the change completes whole).</param>
    /// <returns>When it was changed.</returns>
    /// <exception cref="Grpc.Core.RpcException">Unauthenticated for a wrong current passphrase (nothing changes); InvalidArgument naming a passphrase out of bounds.</exception>
    public async Task<RekeyResponse> RekeyAsync(string passphrase, string newPassphrase, CancellationToken cancellationToken = default) =>
        await _system.RekeyAsync(new RekeyRequest { Passphrase = passphrase, NewPassphrase = newPassphrase }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>One step of a rekey: a passphrase change, or (key-share vault) the start of a re-split, a current share, a new share given back, or a reset.</summary>
    /// <param name="request">The step.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Progress; the new shares once a quorum of the current ones was given; when the new secret took effect.</returns>
    /// <exception cref="Grpc.Core.RpcException">Unauthenticated for a wrong passphrase or quorum; InvalidArgument naming a bad field; FailedPrecondition out of order.</exception>
    public async Task<RekeyResponse> RekeyStepAsync(RekeyRequest request, CancellationToken cancellationToken = default) =>
        await _system.RekeyAsync(request, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Forgets the key shares given so far towards an unseal.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The status after it.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task<StatusResponse> ResetUnsealAsync(CancellationToken cancellationToken = default) =>
        await _system.UnsealAsync(new UnsealRequest { Reset = true }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Seals the vault: the server zeroes its keys. Needs <c>update</c> on <c>sys/seal</c>.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The status after sealing.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task<StatusResponse> SealAsync(CancellationToken cancellationToken = default) =>
        await _system.SealAsync(new SealRequest(), Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Reads whether the vault is initialised and sealed, and its key version. Needs no token.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The server's status.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server is unreachable.</exception>
    public async Task<StatusResponse> GetStatusAsync(CancellationToken cancellationToken = default) =>
        await _system.StatusAsync(new StatusRequest(), Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Adds a key-encryption key version; new writes use it. Needs <c>update</c> on <c>sys/rotate-key</c>.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The new key version and when it was created.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task<RotateKeyResponse> RotateKeyAsync(CancellationToken cancellationToken = default) =>
        await _system.RotateKeyAsync(new RotateKeyRequest(), Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>
    /// Takes an online backup and writes it to <paramref name="destination"/>: every record as it
    /// stood at one commit index, taken while writes go on, the audit trail up to that point and a
    /// MAC keyed from the keyring. It holds ciphertext and non-secret metadata only; checking or
    /// restoring it needs the passphrase or a quorum of key shares. Needs <c>read</c> on <c>sys/backup</c>.
    /// </summary>
    /// <param name="destination">Receives the backup's bytes, in order; not flushed or closed here.</param>
    /// <param name="cancellationToken">Cancels the backup (what was written is then incomplete).</param>
    /// <returns>Where the backup stands and what it holds.</returns>
    /// <exception cref="Grpc.Core.RpcException">PermissionDenied without <c>read</c> on <c>sys/backup</c>;
    /// FailedPrecondition while sealed; Unavailable when the audit log was archived meanwhile (take it again).</exception>
    public async Task<BackupInfo> BackupAsync(Stream destination, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        using var call = _system.Backup(new BackupRequest(), Stream(cancellationToken));
        BackupInfo? info = null;
        long bytes = 0;
        while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            var chunk = call.ResponseStream.Current;
            info ??= new BackupInfo(chunk.Index, chunk.CreatedAt?.ToDateTimeOffset() ?? default, chunk.Records);
            await destination.WriteAsync(chunk.Data.Memory, cancellationToken).ConfigureAwait(false);
            bytes += chunk.Data.Length;
        }
        return (info ?? throw new InvalidOperationException("the server sent an empty backup")) with { Bytes = bytes };
    }
}
