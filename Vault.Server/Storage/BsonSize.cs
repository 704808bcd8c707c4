using LiteDB;

namespace Vault.Server.Storage;

/// <summary>
/// The approximate size of a document in BSON, from a walk of its values (LiteDB keeps its own
/// byte count internal): binary and string payloads exactly, plus a few bytes per field for
/// names, types and lengths. Used to count memory, not to lay out bytes.
/// </summary>
internal static class BsonSize
{
    private const int FieldOverhead = 8;

    public static int Of(BsonDocument document)
    {
        long size = 5;
        foreach (var (name, value) in document)
        {
            size += FieldOverhead + name.Length + Of(value);
        }
        return (int)Math.Min(size, int.MaxValue);
    }

    private static long Of(BsonValue value) => value.Type switch
    {
        BsonType.Binary => value.AsBinary.Length,
        BsonType.String => System.Text.Encoding.UTF8.GetByteCount(value.AsString),
        BsonType.Document => Of(value.AsDocument),
        BsonType.Array => 5 + value.AsArray.Sum(item => FieldOverhead + Of(item)),
        _ => 8,
    };
}
