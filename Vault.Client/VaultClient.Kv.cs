using Vault.Protocol.V1;

namespace Vault.Client;

public sealed partial class VaultClient
{
    /// <summary>Writes a new version of the secret at <paramref name="path"/>.</summary>
    /// <param name="path">The secret's path, e.g. <c>apps/billing/db</c>.</param>
    /// <param name="data">The key/value pairs of the new version.</param>
    /// <param name="cas">Check-and-set: 0 writes only if the path has no version yet, N only if the current version is N; null skips the check.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The new version number and its creation time.</returns>
    /// <exception cref="Grpc.Core.RpcException">Aborted when the check-and-set fails; InvalidArgument for a bad path or value.</exception>
    public async Task<PutSecretResponse> PutSecretAsync(string path, IReadOnlyDictionary<string, string> data, ulong? cas = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        var request = new PutSecretRequest { Path = path };
        request.Data.Add(data.ToDictionary(StringComparer.Ordinal));
        if (cas is { } expected)
        {
            request.Cas = expected;
        }
        return await _kv.PutAsync(request, Call(cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Reads a version of the secret at <paramref name="path"/>.</summary>
    /// <param name="path">The secret's path.</param>
    /// <param name="version">The version to read; 0 reads the latest.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The version's data and metadata.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound when the path or version does not exist or is deleted.</exception>
    public async Task<GetSecretResponse> GetSecretAsync(string path, ulong version = 0, CancellationToken cancellationToken = default) =>
        await _kv.GetAsync(new GetSecretRequest { Path = path, Version = version }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Lists the keys directly under <paramref name="prefix"/>; folders end in <c>/</c>.</summary>
    /// <param name="prefix">The folder to list; empty lists the top level.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The keys, relative to the prefix.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task<IReadOnlyList<string>> ListSecretsAsync(string prefix = "", CancellationToken cancellationToken = default) =>
        (await _kv.ListAsync(new ListSecretsRequest { Prefix = prefix }, Call(cancellationToken)).ConfigureAwait(false)).Keys;

    /// <summary>Soft-deletes versions of a secret; they can be restored with <see cref="UndeleteSecretVersionsAsync"/>.</summary>
    /// <param name="path">The secret's path.</param>
    /// <param name="versions">The versions to delete; null or empty deletes the latest.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The versions deleted.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task<IReadOnlyList<ulong>> DeleteSecretVersionsAsync(string path, IEnumerable<ulong>? versions = null, CancellationToken cancellationToken = default)
    {
        var request = new DeleteSecretRequest { Path = path };
        request.Versions.AddRange(versions ?? []);
        return (await _kv.DeleteAsync(request, Call(cancellationToken)).ConfigureAwait(false)).Versions;
    }

    /// <summary>Restores soft-deleted versions of a secret.</summary>
    /// <param name="path">The secret's path.</param>
    /// <param name="versions">The versions to restore.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The versions restored.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task<IReadOnlyList<ulong>> UndeleteSecretVersionsAsync(string path, IEnumerable<ulong> versions, CancellationToken cancellationToken = default)
    {
        var request = new UndeleteSecretRequest { Path = path };
        request.Versions.AddRange(versions);
        return (await _kv.UndeleteAsync(request, Call(cancellationToken)).ConfigureAwait(false)).Versions;
    }

    /// <summary>Destroys versions of a secret for good: their data keys are erased.</summary>
    /// <param name="path">The secret's path.</param>
    /// <param name="versions">The versions to destroy.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The versions destroyed.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task<IReadOnlyList<ulong>> DestroySecretVersionsAsync(string path, IEnumerable<ulong> versions, CancellationToken cancellationToken = default)
    {
        var request = new DestroySecretRequest { Path = path };
        request.Versions.AddRange(versions);
        return (await _kv.DestroyAsync(request, Call(cancellationToken)).ConfigureAwait(false)).Versions;
    }

    /// <summary>Reads the metadata and version history of a secret.</summary>
    /// <param name="path">The secret's path.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The metadata, with one entry per kept version.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound when the path does not exist.</exception>
    public async Task<SecretMetadata> GetSecretMetadataAsync(string path, CancellationToken cancellationToken = default) =>
        await _kv.GetMetadataAsync(new GetMetadataRequest { Path = path }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Sets a secret's max versions, check-and-set requirement or custom metadata.</summary>
    /// <param name="request">What to change; unset fields are left alone.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The metadata after the change.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task<SecretMetadata> UpdateSecretMetadataAsync(UpdateMetadataRequest request, CancellationToken cancellationToken = default) =>
        await _kv.UpdateMetadataAsync(request, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Destroys every version and the metadata of a secret.</summary>
    /// <param name="path">The secret's path.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the secret is gone.</returns>
    /// <exception cref="Grpc.Core.RpcException">The server refused the call.</exception>
    public async Task DeleteSecretMetadataAsync(string path, CancellationToken cancellationToken = default) =>
        await _kv.DeleteMetadataAsync(new DeleteMetadataRequest { Path = path }, Call(cancellationToken)).ConfigureAwait(false);
}
