using System.Text.Json;
using Google.Protobuf.WellKnownTypes;

namespace Vault.Cli.Output;

/// <summary>Writes results to standard output: aligned lines and tables for people, JSON for scripts.</summary>
internal sealed class Printer(TextWriter output, bool json)
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    private static readonly JsonSerializerOptions JsonLineOptions = new(JsonOptions) { WriteIndented = false };

    /// <summary>True when --json was given: print with <see cref="Json"/> only.</summary>
    public bool IsJson { get; } = json;

    public void Json(object value) => output.WriteLine(JsonSerializer.Serialize(value, JsonOptions));

    /// <summary>Names, one a line; with --json <c>{"&lt;jsonKey&gt;": [...]}</c>.</summary>
    public void Names(string jsonKey, IReadOnlyList<string> names)
    {
        if (IsJson)
        {
            Json(new Dictionary<string, IReadOnlyList<string>> { [jsonKey] = names });
            return;
        }
        foreach (var name in names)
        {
            Line(name);
        }
    }

    /// <summary>Confirms a deletion: a line for people, <c>{"name": .., "deleted": true}</c> with --json.</summary>
    public void Deleted(string what, string name)
    {
        if (IsJson)
        {
            Json(new Dictionary<string, object> { ["name"] = name, ["deleted"] = true });
            return;
        }
        Line($"{what} '{name}' deleted");
    }

    /// <summary>One JSON document on one line (JSON lines), for output that streams.</summary>
    public void JsonLine(object value) => output.WriteLine(JsonSerializer.Serialize(value, JsonLineOptions));

    public void Line(string text) => output.WriteLine(text);

    /// <summary>One value asked for with <c>--field</c>: a JSON string with <c>--json</c>, else the bare text.</summary>
    public void Field(string value)
    {
        if (IsJson)
        {
            Json(value);
        }
        else
        {
            Line(value);
        }
    }

    /// <summary>Two aligned columns: label, value.</summary>
    public void Fields(params (string Label, string Value)[] fields)
    {
        var width = fields.Max(f => f.Label.Length);
        foreach (var (label, value) in fields)
        {
            output.WriteLine($"{label.PadRight(width)}  {value}");
        }
    }

    /// <summary>A table with a header row; columns padded to their widest cell.</summary>
    /// <returns>The column widths, for <see cref="MoreRows"/>.</returns>
    public int[] Table(string[] headers, IReadOnlyList<string[]> rows)
    {
        var widths = headers.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        output.WriteLine(Row(headers, widths));
        output.WriteLine(Row(widths.Select(w => new string('-', w)).ToArray(), widths));
        MoreRows(rows, widths);
        return widths;
    }

    /// <summary>Rows that continue a table already printed (a followed log); a wider cell widens its column from then on.</summary>
    public void MoreRows(IReadOnlyList<string[]> rows, int[] widths)
    {
        foreach (var row in rows)
        {
            for (var i = 0; i < widths.Length; i++)
            {
                widths[i] = Math.Max(widths[i], row[i].Length);
            }
            output.WriteLine(Row(row, widths));
        }
    }

    public static DateTimeOffset? Time(Timestamp? timestamp) => timestamp?.ToDateTimeOffset();

    public static string Human(Timestamp? timestamp) =>
        timestamp is null ? "-" : timestamp.ToDateTimeOffset().ToString("yyyy-MM-dd HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Entries sorted by key, for stable output.</summary>
    public static SortedDictionary<string, string> Sorted(IDictionary<string, string> map) => new(map, StringComparer.Ordinal);

    private static string Row(string[] cells, int[] widths) =>
        string.Join("  ", cells.Select((c, i) => i == cells.Length - 1 ? c : c.PadRight(widths[i]))).TrimEnd();
}
