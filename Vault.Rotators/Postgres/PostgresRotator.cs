namespace Vault.Rotators.Postgres;

/// <summary>Placeholder until the real rotator lands.</summary>
public sealed class PostgresRotator : ICredentialRotator
{
    public string Kind => "postgres";

    public bool SupportsEphemeralUsers => false;

    public (string Field, string Reason)? Validate(TargetConnection connection, string account) => null;

    public Task SetPasswordAsync(TargetConnection connection, Credential admin, string account, string newPassword, CancellationToken cancellationToken) =>
        throw new NotImplementedException();

    public Task<LoginCheck> VerifyLoginAsync(TargetConnection connection, Credential account, CancellationToken cancellationToken) =>
        throw new NotImplementedException();

    public Task CreateEphemeralUserAsync(TargetConnection connection, Credential admin, EphemeralUser user, CancellationToken cancellationToken) =>
        throw new NotSupportedException();

    public Task RevokeEphemeralUserAsync(TargetConnection connection, Credential admin, string username, CancellationToken cancellationToken) =>
        throw new NotSupportedException();
}
