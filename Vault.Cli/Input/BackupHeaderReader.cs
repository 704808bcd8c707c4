using System.Text;
using System.Text.Json;

namespace Vault.Cli.Input;

/// <summary>
/// How the vault in a backup file unseals, read from the file's clear header (format 1: "VAULTBAK",
/// the format number, then the header's JSON) so that vaultctl asks for the right secret before it
/// runs the server binary. The header is checked again, with everything else, by the server binary.
/// </summary>
internal static class BackupHeaderReader
{
    /// <returns>The number of key shares the vault needs (0: a passphrase).</returns>
    /// <exception cref="UsageException">The file cannot be read or is not a backup.</exception>
    public static int Threshold(string path)
    {
        try
        {
            using var reader = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
            if (!reader.ReadBytes(8).AsSpan().SequenceEqual("VAULTBAK"u8) || reader.ReadInt32() != 1)
            {
                throw new UsageException($"{path} is not a vault backup (format 1)");
            }
            using var header = JsonDocument.Parse(reader.ReadString());
            return header.RootElement.TryGetProperty("secret_threshold", out var threshold) && threshold.TryGetInt32(out var t) ? t : 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or FormatException)
        {
            throw new UsageException($"cannot read the backup's header from {path}: {ex.Message}");
        }
    }
}
