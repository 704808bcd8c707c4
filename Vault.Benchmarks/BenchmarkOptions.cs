using System.Globalization;
using Vault.Benchmarks.Hosting;

namespace Vault.Benchmarks;

/// <summary>Command-line settings of one benchmark run.</summary>
internal sealed record BenchmarkOptions
{
    public const string Usage = """
        Usage: dotnet run -c Release --project Vault.Benchmarks -- [options]
               dotnet run -c Release --project Vault.Benchmarks -- unseal [--times N]
               dotnet run -c Release --project Vault.Benchmarks -- failover [--times N] [--ttl 00:00:10]
          --scenario LIST          comma-separated, or all (default: all = every scenario but kv-get-scale
                                   and kv-put-large): echo, kv-get, kv-put, token-lookup, lease-checkout,
                                   rotate, rotate-floor, kv-get-scale (kv-get over --scale-secrets secrets,
                                   beside kv-get), kv-put-large (--clients puts of 1 MiB values beside one
                                   small reader; server peak memory and the reader's p99, idle and loaded),
                                   kv-get-pg, kv-put-pg (kv-get / kv-put with the records in PostgreSQL),
                                   kv-get-active, kv-get-standby, kv-put-active (on each of two nodes
                                   sharing a PostgreSQL database)
          --clients 1,8,32,128     concurrent closed-loop clients, one row per value
          --transport plaintext,tls  HTTP/2 without or with TLS (self-signed, made per run)
          --payload 1024           value / echo sizes in bytes, comma-separated (echo, kv-get, kv-put;
                                   the other scenarios run at 1024 if listed, else the smallest)
          --duration 10s           measured time per row (ms, s or m suffix)
          --warmup 2s              unmeasured time before each row
          --secrets 1000           distinct paths read by kv-get and written by kv-put
          --scale-secrets 100000   secrets seeded for kv-get-scale
        """;

    public const int PreferredReferencePayload = 1024;

    public IReadOnlyList<string> Scenarios { get; init; } = ScenarioNames.Default;
    public IReadOnlyList<int> Clients { get; init; } = [1, 8, 32, 128];
    public IReadOnlyList<string> Transports { get; init; } = [Transport.Plaintext, Transport.TlsName];
    public IReadOnlyList<int> Payloads { get; init; } = [PreferredReferencePayload];
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(2);
    public int Secrets { get; init; } = 1000;
    public int ScaleSecrets { get; init; } = 100_000;

    /// <summary>The payload at which payload-free scenarios (and kv-get-scale) run and are compared with echo: 1024 if listed, else the smallest.</summary>
    public int ReferencePayload => Payloads.Contains(PreferredReferencePayload) ? PreferredReferencePayload : Payloads.Min();

    public bool Runs(string scenario) => Scenarios.Contains(scenario);

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
                "--scenario" => options with { Scenarios = ParseScenarios(Value()) },
                "--clients" => options with { Clients = ParseList(name, Value(), max: 4096) },
                "--transport" => options with { Transports = ParseTransports(Value()) },
                "--payload" => options with { Payloads = ParseList(name, Value(), max: 512 * 1024) },
                "--duration" => options with { Duration = ParseDuration(name, Value()) },
                "--warmup" => options with { Warmup = ParseDuration(name, Value()) },
                "--secrets" => options with { Secrets = ParsePositive(name, Value(), max: 1_000_000) },
                "--scale-secrets" => options with { ScaleSecrets = ParsePositive(name, Value(), max: 1_000_000) },
                _ => throw new FormatException($"unknown option '{name}'"),
            };
        }
        return options;
    }

    private static string[] Split(string value) => value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static string[] ParseScenarios(string value)
    {
        if (value == "all")
        {
            return ScenarioNames.Default;
        }
        var names = Split(value);
        foreach (var name in names)
        {
            if (!ScenarioNames.All.Contains(name))
            {
                throw new FormatException($"--scenario: unknown scenario '{name}' (known: {string.Join(", ", ScenarioNames.All)}, or all)");
            }
        }
        return names.Length > 0 ? [.. names.Distinct()] : throw new FormatException("--scenario needs at least one name");
    }

    private static string[] ParseTransports(string value)
    {
        var names = Split(value);
        foreach (var name in names)
        {
            if (name is not (Transport.Plaintext or Transport.TlsName))
            {
                throw new FormatException($"--transport must list plaintext and/or tls, not '{name}'");
            }
        }
        return names.Length > 0 ? [.. names.Distinct()] : throw new FormatException("--transport needs at least one name");
    }

    private static int[] ParseList(string name, string value, int max)
    {
        var parts = Split(value);
        return parts.Length > 0
            ? [.. parts.Select(p => ParsePositive(name, p, max)).Distinct()]
            : throw new FormatException($"{name} needs at least one number");
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
