namespace Vault.Tests.Infrastructure;

/// <summary>The ways an attacker can tamper with an audit file, applied to its lines.</summary>
public static class AuditTampering
{
    public static TheoryData<string> Kinds => new() { "edit", "delete", "swap", "truncate", "forge" };

    /// <summary>Tampers with <paramref name="lines"/> (at least six entries of one file, seq = line number).</summary>
    /// <returns>The 1-based line that verification must name as the first bad one.</returns>
    public static int Apply(string kind, List<string> lines)
    {
        switch (kind)
        {
            case "edit":
                // One character of the path: the line stays valid JSON, so only the HMAC can tell.
                var edited = lines[4].Replace("\"path\":\"kv/", "\"path\":\"Kv/", StringComparison.Ordinal);
                Assert.NotEqual(lines[4], edited);
                lines[4] = edited;
                return 5;
            case "delete":
                lines.RemoveAt(4);
                return 5;
            case "swap":
                (lines[4], lines[5]) = (lines[5], lines[4]);
                return 5;
            case "truncate":
                lines.RemoveRange(lines.Count - 2, 2);
                return lines.Count + 1;
            case "forge":
                var forged = lines[^1].Replace($"\"seq\":{lines.Count}", $"\"seq\":{lines.Count + 1}", StringComparison.Ordinal);
                Assert.NotEqual(lines[^1], forged);
                lines.Add(forged);
                return lines.Count;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown tampering");
        }
    }
}
