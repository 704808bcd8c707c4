using System.Globalization;

namespace Vault.Benchmarks;

/// <summary>Command-line settings of one benchmark run.</summary>
internal sealed record BenchmarkOptions
{
    public const string Usage = """
        Usage: dotnet run -c Release --project Vault.Benchmarks -- [options]
          --scenario kv-get|kv-put|echo|all   what to drive (default all)
          --clients 1,8,32                    concurrent closed-loop clients, one run per value
          --duration 10s                      measured time per run (ms, s or m suffix)
          --warmup 2s                         unmeasured time before each run
          --payload 1024                      secret value / echo payload size in bytes
          --secrets 1000                      distinct paths read by kv-get and written by kv-put
        """;

    public static readonly string[] AllScenarios = [ScenarioNames.Echo, ScenarioNames.KvGet, ScenarioNames.KvPut];

    public IReadOnlyList<string> Scenarios { get; init; } = AllScenarios;
    public IReadOnlyList<int> Clients { get; init; } = [1, 8, 32];
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(2);
    public int Payload { get; init; } = 1024;
    public int Secrets { get; init; } = 1000;

    /// <exception cref="FormatException">An option or its value is not understood (the message says which).</exception>
    public static BenchmarkOptions Parse(IReadOnlyList<string> args)
    {
        var options = new BenchmarkOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            string? inline = null;
            var eq = name.IndexOf('=', StringComparison.Ordinal);
            if (name.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                inline = name[(eq + 1)..];
                name = name[..eq];
            }
            string Value() => inline ?? (++i < args.Count ? args[i] : throw new FormatException($"{name} needs a value"));
            options = name switch
            {
                "--scenario" => options with { Scenarios = ParseScenario(Value()) },
                "--clients" => options with { Clients = ParseClients(Value()) },
                "--duration" => options with { Duration = ParseDuration(name, Value()) },
                "--warmup" => options with { Warmup = ParseDuration(name, Value()) },
                "--payload" => options with { Payload = ParsePositive(name, Value(), max: 512 * 1024) },
                "--secrets" => options with { Secrets = ParsePositive(name, Value(), max: 1_000_000) },
                _ => throw new FormatException($"unknown option '{name}'"),
            };
        }
        return options;
    }

    private static string[] ParseScenario(string value) => value switch
    {
        "all" => AllScenarios,
        ScenarioNames.Echo or ScenarioNames.KvGet or ScenarioNames.KvPut => [value],
        _ => throw new FormatException($"--scenario must be kv-get, kv-put, echo or all, not '{value}'"),
    };

    private static int[] ParseClients(string value)
    {
        var parts = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0)
        {
            throw new FormatException("--clients needs at least one number");
        }
        return [.. parts.Select(p => ParsePositive("--clients", p, max: 4096))];
    }

    private static int ParsePositive(string name, string value, int max) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1 && n <= max
            ? n
            : throw new FormatException($"{name} must be a whole number between 1 and {max}, not '{value}'");

    private static TimeSpan ParseDuration(string name, string value)
    {
        var (number, unit) = value switch
        {
            _ when value.EndsWith("ms", StringComparison.Ordinal) => (value[..^2], 0.001),
            _ when value.EndsWith('s') => (value[..^1], 1.0),
            _ when value.EndsWith('m') => (value[..^1], 60.0),
            _ => (value, 1.0),
        };
        return double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n) && n >= 0
            ? TimeSpan.FromSeconds(n * unit)
            : throw new FormatException($"{name} must be a duration like 500ms, 10s or 1m, not '{value}'");
    }
}
