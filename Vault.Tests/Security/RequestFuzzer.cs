using System.Collections;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Vault.Tests.Security;

/// <summary>One malformed request: which RPC, the body bytes, and a short description for a failure message.</summary>
public sealed record FuzzedRequest(int Index, MethodDescriptor Method, byte[] Body, string Description);

/// <summary>
/// Builds malformed requests for any vault.v1 RPC from its descriptor: fields set or left out at
/// random, with edge-case strings, numbers, maps and nested messages; mutated encodings; and
/// plain random bytes. Request <c>i</c> depends only on the seed and <c>i</c>, so a failure can
/// be replayed whatever the concurrency.
/// </summary>
public sealed class RequestFuzzer(int seed, IReadOnlyList<MethodDescriptor> methods)
{
    private static readonly string[] Fragments =
    [
        "", ".", "..", "/", "//", "a//b", "/a", "a/", "a/./b", "a/../b", "../../etc/passwd", "*", "+", "a/+/b", "kv/*", "kv/+", "sys/*",
        "\0", "a\nb", "\t", "\r\n", "\u007f", "\u0085", " ", " a", "a ", "\u00a0",
        "\ud800", "\udfff", "a\ud800b", "\ud83d\ude00", "\u202e", "abc\u202edef", "\u200b", "\ufeff", "\u200d", "\ufffd", "é", "ß", "日本語", "𝔘𝔫𝔦",
        "read", "list", "create", "update", "delete", "rotate", "checkout", "admin", "deny", "READ", "root", "default",
        "va_", "va_00", "vt_", "Bearer x", "%00", "%2e%2e", "\\", "a\\b", "'", "\"", "{}", "$where", "_id", "null",
    ];

    private static readonly ulong[] UInt64Edges = [0, 1, 2, 3, 1000, 1001, int.MaxValue, uint.MaxValue, long.MaxValue, (ulong)long.MaxValue + 1, ulong.MaxValue - 1, ulong.MaxValue];
    private static readonly uint[] UInt32Edges = [0, 1, 2, 7, 8, 16, 17, 64, 65, 1000, 1001, 8191, 8192, 10_000, 10_001, 4 * 1024 * 1024 + 1, int.MaxValue, (uint)int.MaxValue + 1, uint.MaxValue];
    private static readonly long[] Int64Edges = [0, 1, -1, 59, 3600, 315_576_000_000, 315_576_000_001, -315_576_000_001, 253_402_300_799, 253_402_300_800, int.MaxValue, long.MaxValue, long.MinValue];
    private static readonly int[] Int32Edges = [0, 1, -1, 999_999_999, 1_000_000_000, -999_999_999, -1_000_000_000, int.MaxValue, int.MinValue];

    public int Seed { get; } = seed;

    public FuzzedRequest Next(int index)
    {
        var rng = new Random(HashCode.Combine(Seed, index));
        var method = methods[rng.Next(methods.Count)];
        var roll = rng.NextDouble();
        if (roll < 0.12)
        {
            var body = RandomBytes(rng);
            return new(index, method, body, $"random bytes ({body.Length}): {Convert.ToHexString(body.AsSpan(0, Math.Min(body.Length, 48)))}");
        }
        var message = Build(rng, method.InputType, depth: 0);
        byte[] encoded;
        try
        {
            encoded = message.ToByteArray();
        }
        catch (ArgumentException)
        {
            // A lone surrogate has no UTF-8 form: the client library refuses to encode it, so
            // send the message's other bytes with the string cut short by the mutation below.
            encoded = RandomBytesOf(rng, 16);
            return new(index, method, encoded, $"random bytes in place of unencodable {Short(message)}");
        }
        if (roll < 0.24 && encoded.Length > 0)
        {
            Mutate(rng, encoded);
            return new(index, method, encoded, $"mutated encoding of {Short(message)}");
        }
        return new(index, method, encoded, Short(message));
    }

    private IMessage Build(Random rng, MessageDescriptor type, int depth)
    {
        var message = (IMessage)Activator.CreateInstance(type.ClrType)!;
        foreach (var field in type.Fields.InFieldNumberOrder())
        {
            if (rng.NextDouble() < 0.35)
            {
                continue; // a missing field
            }
            if (field.IsMap)
            {
                FillMap(rng, (IDictionary)field.Accessor.GetValue(message));
            }
            else if (field.IsRepeated)
            {
                var list = (IList)field.Accessor.GetValue(message);
                var count = rng.NextDouble() < 0.05 ? rng.Next(1000, 3000) : rng.Next(0, 5);
                for (var i = 0; i < count; i++)
                {
                    list.Add(Scalar(rng, field, depth));
                }
            }
            else
            {
                field.Accessor.SetValue(message, Scalar(rng, field, depth));
            }
        }
        return message;
    }

    private object Scalar(Random rng, FieldDescriptor field, int depth) => field.FieldType switch
    {
        FieldType.String => FuzzString(rng),
        FieldType.UInt64 => Pick(rng, UInt64Edges, () => (ulong)rng.NextInt64()),
        FieldType.UInt32 => Pick(rng, UInt32Edges, () => (uint)rng.Next()),
        FieldType.Int64 => Pick(rng, Int64Edges, rng.NextInt64),
        FieldType.Int32 => Pick(rng, Int32Edges, rng.Next),
        FieldType.Bool => rng.Next(2) == 0,
        FieldType.Bytes => ByteString.CopyFrom(RandomBytes(rng)),
        FieldType.Enum => rng.Next(-2, 5),
        FieldType.Message => depth > 3 ? (IMessage)Activator.CreateInstance(field.MessageType.ClrType)! : Build(rng, field.MessageType, depth + 1),
        _ => throw new NotSupportedException($"fuzzer has no values for {field.FieldType} ({field.FullName})"),
    };

    private static void FillMap(Random rng, IDictionary map)
    {
        var shape = rng.NextDouble();
        if (shape < 0.04)
        {
            // Thousands of keys.
            var count = rng.Next(1025, 5000);
            for (var i = 0; i < count; i++)
            {
                map[$"k{i}"] = "v";
            }
        }
        else if (shape < 0.07)
        {
            // One value just over (or far over) 1 MiB.
            map["big"] = new string('x', 1024 * 1024 + rng.Next(1, 3 * 1024 * 1024));
        }
        else if (shape < 0.09)
        {
            // Under the limit in UTF-16, over it once UTF-8 or JSON-escaped.
            map["wide"] = string.Concat(Enumerable.Repeat("€\u0001<", 180_000));
        }
        else
        {
            var count = rng.Next(0, 6);
            for (var i = 0; i < count; i++)
            {
                map[FuzzString(rng)] = FuzzString(rng);
            }
        }
    }

    private static string FuzzString(Random rng)
    {
        var roll = rng.NextDouble();
        if (roll < 0.08)
        {
            return new string(rng.Next(2) == 0 ? 'a' : '/', Pick(rng, [256, 257, 511, 512, 513, 1023, 1024, 4096, 70_000], () => rng.Next(1, 2048)));
        }
        if (roll < 0.15)
        {
            // Random UTF-16 code units, surrogates and controls included.
            var chars = new char[rng.Next(1, 40)];
            for (var i = 0; i < chars.Length; i++)
            {
                chars[i] = (char)rng.Next(0, 0x10000);
            }
            return new string(chars);
        }
        if (roll < 0.2)
        {
            return "va_" + Convert.ToHexStringLower(RandomBytesOf(rng, rng.Next(0, 20)));
        }
        if (roll < 0.25)
        {
            return "sec-fuzz/" + Convert.ToHexStringLower(RandomBytesOf(rng, 4));
        }
        // A path-like join of interesting fragments.
        var parts = rng.Next(1, 5);
        var builder = new StringBuilder();
        for (var i = 0; i < parts; i++)
        {
            if (i > 0)
            {
                builder.Append(rng.Next(4) == 0 ? "" : "/");
            }
            builder.Append(rng.Next(3) == 0 ? "s" + rng.Next(100) : Fragments[rng.Next(Fragments.Length)]);
        }
        return builder.ToString();
    }

    private static T Pick<T>(Random rng, T[] edges, Func<T> random) => rng.Next(4) == 0 ? random() : edges[rng.Next(edges.Length)];

    private static byte[] RandomBytes(Random rng)
    {
        var length = rng.NextDouble() < 0.05 ? rng.Next(4096, 200_000) : rng.Next(0, 96);
        return RandomBytesOf(rng, length);
    }

    private static byte[] RandomBytesOf(Random rng, int length)
    {
        var bytes = new byte[length];
        rng.NextBytes(bytes);
        return bytes;
    }

    private static void Mutate(Random rng, byte[] encoded)
    {
        var flips = rng.Next(1, 4);
        for (var i = 0; i < flips; i++)
        {
            encoded[rng.Next(encoded.Length)] ^= (byte)(1 << rng.Next(8));
        }
    }

    private static string Short(IMessage message)
    {
        string text;
        try
        {
            text = message.ToString() ?? "";
        }
        catch (ArgumentException)
        {
            // The JSON formatter refuses lone surrogates; the wire bytes still describe it.
            text = $"{message.Descriptor.Name} (unprintable) {Convert.ToHexString(message.ToByteArray())}";
        }
        return text.Length <= 300 ? text : text[..300] + $"… ({text.Length} chars)";
    }
}
