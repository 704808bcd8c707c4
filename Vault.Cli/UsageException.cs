namespace Vault.Cli;

/// <summary>A problem with what the user typed or supplied; printed as one line, exit code 1.</summary>
internal sealed class UsageException(string message) : Exception(message);
