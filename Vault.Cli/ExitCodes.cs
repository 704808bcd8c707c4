namespace Vault.Cli;

/// <summary>vaultctl's exit codes; documented in the root command's help and docs/CLI.md.</summary>
internal static class ExitCodes
{
    public const int Success = 0;

    /// <summary>Bad command line or local input (unreadable file, invalid JSON, missing field).</summary>
    public const int Usage = 1;

    /// <summary>The server answered with an error status (NotFound, PermissionDenied, …), or reported that a rotation it ran failed.</summary>
    public const int ServerError = 2;

    /// <summary>The server could not be reached (connection refused, TLS handshake failed, connect timeout) or did not answer within <c>--timeout</c>.</summary>
    public const int ConnectionFailed = 3;

    /// <summary>A check ran and found a problem: <c>audit verify</c> found a broken chain.</summary>
    public const int VerificationFailed = 4;

    /// <summary>Interrupted (Ctrl+C), as shells report SIGINT.</summary>
    public const int Cancelled = 130;

    public const string Help = """
        Exit codes: 0 success; 1 usage or local input error; 2 the server returned an error
        (printed as 'vaultctl: <StatusCode>: <detail>'), 'target rotate' reported a failed
        rotation, or 'report credentials --prune --yes' could not revoke some of its list; 3 the server could not be reached or did not answer within --timeout;
        4 'audit verify' found the audit log broken.
        """;
}
