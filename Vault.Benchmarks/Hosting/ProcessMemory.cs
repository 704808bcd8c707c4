using System.Globalization;

namespace Vault.Benchmarks.Hosting;

/// <summary>A server's resident memory from <c>/proc/&lt;pid&gt;/status</c>, in MiB.</summary>
/// <param name="PeakMb"><c>VmHWM</c>: the highest resident set since the last reset (see <see cref="TryResetPeak"/>) or since the process started.</param>
/// <param name="RssMb"><c>VmRSS</c>: the resident set now (the working set).</param>
internal readonly record struct ProcessMemory(double PeakMb, double RssMb)
{
    public static ProcessMemory Read(int pid)
    {
        double peak = 0, rss = 0;
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                peak = Kib(line);
            }
            else if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                rss = Kib(line);
            }
        }
        return new ProcessMemory(peak / 1024, rss / 1024);
    }

    /// <summary>
    /// Sets <c>VmHWM</c> back to the current resident set (writing 5 to <c>/proc/&lt;pid&gt;/clear_refs</c>,
    /// Linux 4.0+), so that the next <see cref="Read"/> gives the peak since now. Nothing else changes.
    /// </summary>
    /// <returns>false if the kernel refused: the peak is then the one since the process started.</returns>
    public static bool TryResetPeak(int pid)
    {
        try
        {
            using var stream = new FileStream($"/proc/{pid}/clear_refs", FileMode.Open, FileAccess.Write);
            stream.Write("5"u8);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    // "VmHWM:\t  123456 kB"
    private static double Kib(string line) =>
        double.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], NumberStyles.Integer, CultureInfo.InvariantCulture);
}
