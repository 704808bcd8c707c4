namespace Vault.Testing.Servers;

/// <summary>The POSIX signals the fixtures send (Linux numbering); the names double as <c>kill -NAME</c>.</summary>
internal enum Signal
{
    Int = 2,
    Quit = 3,
    Kill = 9,
    Term = 15,
}
