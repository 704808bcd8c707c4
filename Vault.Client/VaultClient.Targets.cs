using Vault.Protocol.V1;

namespace Vault.Client;

public sealed partial class VaultClient
{
    private TargetService.TargetServiceClient Targets => new(_invoker);

    /// <summary>Registers a rotation target, or replaces the configuration of an existing one.</summary>
    /// <param name="target">The target: kind, connection, account(s), admin secret, password policy, schedule, strategy. Its status is ignored.</param>
    /// <param name="rotateNow">Rotate at once after registering or updating.</param>
    /// <param name="currentPassword">
    /// The account's password today: required for a new target unless <paramref name="rotateNow"/>; on an
    /// update it replaces the password the vault holds and is checked by logging in. Null: not given.
    /// </param>
    /// <param name="secondCurrentPassword">The same for the second account (alternating users). Null: not given.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The target as stored, with its status.</returns>
    /// <exception cref="Grpc.Core.RpcException">
    /// InvalidArgument naming the bad field (e.g. <c>target.kind</c>; <c>target.admin_secret</c> when
    /// the system refuses the admin credential, <c>target.account</c> when it has no such account);
    /// FailedPrecondition when the system cannot be reached to check them; PermissionDenied without
    /// <c>create</c>/<c>update</c> on the target or <c>read</c> on its admin secret.
    /// </exception>
    // Two overloads with optional parameters (RS0026): the second, with skip_verification, came
    // before the public API was tracked; a later parameter goes into a request-options type instead.
#pragma warning disable RS0026
    public Task<Target> PutTargetAsync(Target target, bool rotateNow = false, string? currentPassword = null, string? secondCurrentPassword = null, CancellationToken cancellationToken = default) =>
        PutTargetAsync(target, rotateNow, currentPassword, secondCurrentPassword, skipVerification: false, cancellationToken);

    /// <summary>Registers or updates a rotation target, optionally without checking it on its system first.</summary>
    /// <param name="target">As for <see cref="PutTargetAsync(Target, bool, string?, string?, CancellationToken)"/>.</param>
    /// <param name="rotateNow">Rotate at once after registering or updating.</param>
    /// <param name="currentPassword">The account's password today; null: not given.</param>
    /// <param name="secondCurrentPassword">The same for the second account; null: not given.</param>
    /// <param name="skipVerification">
    /// Store the target without first checking that its admin credential logs in and its account
    /// exists (for a system that is down during onboarding).
    /// </param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The target as stored, with its status.</returns>
    /// <exception cref="Grpc.Core.RpcException">As for <see cref="PutTargetAsync(Target, bool, string?, string?, CancellationToken)"/>.</exception>
    public async Task<Target> PutTargetAsync(Target target, bool rotateNow, string? currentPassword, string? secondCurrentPassword, bool skipVerification, CancellationToken cancellationToken = default)
#pragma warning restore RS0026
    {
        ArgumentNullException.ThrowIfNull(target);
        var request = new PutTargetRequest
        {
            Target = target,
            RotateNow = rotateNow,
            CurrentPassword = currentPassword ?? "",
            SecondCurrentPassword = secondCurrentPassword ?? "",
            SkipVerification = skipVerification,
        };
        return await Targets.PutTargetAsync(request, Call(cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Reads a target's configuration and status (never a password).</summary>
    /// <param name="name">The target's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The target.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown target.</exception>
    public async Task<Target> GetTargetAsync(string name, CancellationToken cancellationToken = default) =>
        await Targets.GetTargetAsync(new GetTargetRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Lists every target with its status.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The targets, sorted by name.</returns>
    /// <exception cref="Grpc.Core.RpcException">PermissionDenied without <c>list</c> on <c>rotation/target</c>.</exception>
    public async Task<IReadOnlyList<Target>> ListTargetsAsync(CancellationToken cancellationToken = default) =>
        (await Targets.ListTargetsAsync(new ListTargetsRequest(), Call(cancellationToken)).ConfigureAwait(false)).Targets;

    /// <summary>Forgets a target and its history; the account keeps its current password.</summary>
    /// <param name="name">The target's name.</param>
    /// <param name="force">Delete even while a pending password awaits reconciliation (it may be the one the system holds).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the target is gone.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown target; FailedPrecondition for a pending password without <paramref name="force"/>.</exception>
    public async Task DeleteTargetAsync(string name, bool force = false, CancellationToken cancellationToken = default) =>
        await Targets.DeleteTargetAsync(new DeleteTargetRequest { Name = name, Force = force }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Rotates a target's password now and waits until the rotation has ended.</summary>
    /// <param name="name">The target's name.</param>
    /// <param name="cancellationToken">Cancels the wait (the rotation itself runs on in the server).</param>
    /// <returns>The target afterwards and what the rotation did.</returns>
    /// <remarks>
    /// A rotation that failed is not an error: it is answered with <see cref="RotationOutcome.Failed"/>
    /// (or another outcome than <see cref="RotationOutcome.Succeeded"/>) in
    /// <see cref="RotateTargetResponse.Event"/>, with the step and the reason.
    /// </remarks>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown target; FailedPrecondition for a paused one.</exception>
    public async Task<RotateTargetResponse> RotateTargetAsync(string name, CancellationToken cancellationToken = default) =>
        await Targets.RotateTargetAsync(new RotateTargetRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Stops scheduled (and manual) rotations of a target until it is resumed.</summary>
    /// <param name="name">The target's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The target, paused.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown target.</exception>
    public async Task<Target> PauseTargetAsync(string name, CancellationToken cancellationToken = default) =>
        await Targets.PauseTargetAsync(new PauseTargetRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Resumes scheduled rotations of a paused target.</summary>
    /// <param name="name">The target's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The target, with its next rotation scheduled.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown target.</exception>
    public async Task<Target> ResumeTargetAsync(string name, CancellationToken cancellationToken = default) =>
        await Targets.ResumeTargetAsync(new ResumeTargetRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);

    /// <summary>Reads a target's rotations, failures, reconciliations and drift findings.</summary>
    /// <param name="name">The target's name.</param>
    /// <param name="limit">At most this many events; 0 for the server's default (50). The server allows at most 1000.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The events, newest first.</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown target.</exception>
    public async Task<IReadOnlyList<RotationEvent>> ListTargetHistoryAsync(string name, uint limit = 0, CancellationToken cancellationToken = default) =>
        (await Targets.ListTargetHistoryAsync(new ListTargetHistoryRequest { Name = name, Limit = limit }, Call(cancellationToken)).ConfigureAwait(false)).Events;

    /// <summary>Reads the account and password applications should use now.</summary>
    /// <param name="name">The target's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The username, password, version and when the next rotation is due (the credential may be cached until then).</returns>
    /// <exception cref="Grpc.Core.RpcException">NotFound for an unknown target; PermissionDenied without <c>read</c> on <c>rotation/target/&lt;name&gt;/credential</c>.</exception>
    public async Task<TargetCredential> GetTargetCredentialAsync(string name, CancellationToken cancellationToken = default) =>
        await Targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, Call(cancellationToken)).ConfigureAwait(false);
}
