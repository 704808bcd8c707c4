namespace Vault.Cli;

/// <summary>
/// The server ran a rotation and reported that it did not succeed (the call itself was answered
/// OK); printed as one line, exit code 2 like any other failure the server reports.
/// </summary>
internal sealed class RotationFailedException(string message) : Exception(message);
