namespace Vault.Cli;

/// <summary>A check ran and found a problem (not a failure to run it); printed as one line, exit code 4.</summary>
internal sealed class VerificationFailedException(string message) : Exception(message);
