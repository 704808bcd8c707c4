namespace Vault.Cli;

/// <summary>
/// <c>report credentials --prune --yes</c> could not revoke some of what it listed (the server
/// refused them); printed as one line, exit code 2 like any other failure the server reports.
/// </summary>
internal sealed class PruneIncompleteException(string message) : Exception(message);
