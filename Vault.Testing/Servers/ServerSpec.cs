namespace Vault.Testing.Servers;

/// <summary>How to run one kind of server: what <see cref="ServerInstance"/> needs to start, probe and stop it.</summary>
/// <param name="Kind">Short name for directories (<c>pg</c>, <c>mariadb</c>, <c>ldap</c>).</param>
/// <param name="Product">Name in messages (<c>PostgreSQL 15</c>).</param>
/// <param name="User">Service user the server runs as; <c>null</c> for the current user.</param>
/// <param name="OutputFile">Where the server's stdout and stderr go, inside the directory.</param>
/// <param name="StopSignal">A clean shutdown (<see cref="ServerInstance.StopAsync"/>).</param>
/// <param name="DisposeSignal">The quickest shutdown that leaves no stray processes; the data is thrown away anyway.</param>
/// <param name="CommandLine">The server's argv for (directory, port).</param>
/// <param name="Probe">Completes when a real client logs in on the port; throws while the server is not ready.</param>
/// <param name="NewPortEachStart">
/// Pick a free port at every start, not only the first: for a server whose probe cannot tell it
/// from another of its kind (the vault's status call needs no login), since a port freed by a kill
/// can be taken by another test's server before the restart.
/// </param>
internal sealed record ServerSpec(
    string Kind,
    string Product,
    string? User,
    string OutputFile,
    Signal StopSignal,
    Signal DisposeSignal,
    Func<string, int, IReadOnlyList<string>> CommandLine,
    Func<int, CancellationToken, Task> Probe,
    bool NewPortEachStart = false,
    Func<int, string, bool>? Listening = null);
