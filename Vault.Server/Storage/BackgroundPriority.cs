using System.Runtime.InteropServices;

namespace Vault.Server.Storage;

/// <summary>
/// Lowers the scheduling priority of a thread that does background work (Linux's per-thread
/// nice value), so that on a busy machine the threads answering requests get a core first. The
/// work still gets done: it has every core nobody else wants, and what it falls behind on is
/// bounded elsewhere (the store's backlog counts against request admission).
/// </summary>
internal static class BackgroundPriority
{
    /// <summary>The nice value of background threads: 10 of Linux's 19 steps below normal.</summary>
    public const int Nice = 10;

    private const int PrioProcess = 0;

    /// <summary>Lowers the calling thread's priority on Linux; elsewhere, or if refused, it stays as it is.</summary>
    public static void LowerCurrentThread()
    {
        if (OperatingSystem.IsLinux())
        {
            // With PRIO_PROCESS and a thread id, setpriority changes that one thread (see setpriority(2), BUGS).
            _ = setpriority(PrioProcess, gettid(), Nice);
        }
    }

    // DllImport, not LibraryImport: two int functions need no marshalling, and LibraryImport
    // would make the whole assembly allow unsafe code.
    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int setpriority(int which, int who, int prio);

    [DllImport("libc")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int gettid();
}
