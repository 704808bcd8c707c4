using Vault.Rotators;
using Vault.Server.Secrets;

namespace Vault.Server.Rotation;

/// <summary>
/// Reads the admin credential a target names: the fields <c>username</c> and <c>password</c> of a
/// KV secret. Read afresh at registration, at each rotation and for each lease rather than copied
/// into the target, so an admin who changes the secret in KV changes what the vault logs in with.
/// </summary>
public sealed class AdminCredentialReader(KvEngine kv)
{
    /// <summary>The credential at <paramref name="path"/>; every problem is reported as <paramref name="field"/>, the name the caller knows the path by.</summary>
    /// <exception cref="ValidationException">Missing or invalid path, no secret there, or a field missing or empty.</exception>
    public Credential Read(string? path, string field)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw new ValidationException(field, "is required: the KV path of the admin credential (fields 'username' and 'password')");
        }
        try
        {
            SecretValidation.Path(path);
        }
        catch (ValidationException ex)
        {
            throw new ValidationException(field, ex.Message);
        }
        SecretValue secret;
        try
        {
            secret = kv.Get(path, 0);
        }
        catch (NotFoundException)
        {
            throw new ValidationException(field, $"no KV secret at '{path}'");
        }
        if (!secret.Data.TryGetValue("username", out var username) || string.IsNullOrEmpty(username))
        {
            throw new ValidationException(field, $"the secret at '{path}' has no 'username' field");
        }
        if (!secret.Data.TryGetValue("password", out var password) || string.IsNullOrEmpty(password))
        {
            throw new ValidationException(field, $"the secret at '{path}' has no 'password' field");
        }
        return new Credential(username, password);
    }
}
