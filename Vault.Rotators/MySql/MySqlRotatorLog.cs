using Microsoft.Extensions.Logging;

namespace Vault.Rotators.MySql;

/// <summary>Log definitions of <see cref="MySqlRotator"/>; Vault.Rotators uses event ids 7001-7099.</summary>
internal static partial class MySqlRotatorLog
{
    [LoggerMessage(7001, LogLevel.Warning,
        "{Server} refuses pre-hashed passwords (strict_password_validation with a password validation plugin); setting the password of {Account} with IDENTIFIED BY, so the plaintext may be written to the server's general log")]
    public static partial void PlaintextFallback(ILogger logger, string server, string account);
}
