using System.Globalization;

namespace Vault.Server.Audit;

/// <summary>
/// The names of the audit files (<c>audit-NNNNNN.jsonl</c>, six digits, so name order is age
/// order) and which of them hold the kept chain: those from the anchor's start file on. Files
/// named before it were archived; whether they are still in the directory does not matter.
/// </summary>
internal static class AuditFiles
{
    public const string Prefix = "audit-";
    public const string Suffix = ".jsonl";
    /// <summary>Where archived files are moved, under the audit directory.</summary>
    public const string ArchiveDirectory = "archive";

    /// <summary>Every audit file in <paramref name="directory"/>, oldest first; other files are ignored.</summary>
    public static IReadOnlyList<string> All(string directory) =>
        !Directory.Exists(directory) ? [] : Directory.GetFiles(directory, Prefix + "*" + Suffix)
            .Where(f => IsAuditFile(Path.GetFileName(f)))
            .Order(StringComparer.Ordinal)
            .ToList();

    /// <summary>The files of the kept chain, oldest first: those named <paramref name="startFile"/> or later (all when it is empty).</summary>
    public static IReadOnlyList<string> Kept(string directory, string startFile) =>
        All(directory).Where(f => string.CompareOrdinal(Path.GetFileName(f), startFile) >= 0).ToList();

    public static bool IsAuditFile(string name) =>
        name.Length == Prefix.Length + 6 + Suffix.Length
        && name.StartsWith(Prefix, StringComparison.Ordinal)
        && name.EndsWith(Suffix, StringComparison.Ordinal)
        && !name.AsSpan(Prefix.Length, 6).ContainsAnyExceptInRange('0', '9');

    /// <summary>The number in a file's name; 0 for an empty name.</summary>
    public static int Index(string name) =>
        name.Length == 0 ? 0 : int.Parse(name[Prefix.Length..^Suffix.Length], CultureInfo.InvariantCulture);

    public static string Name(int index) => $"{Prefix}{index:D6}{Suffix}";
}
