namespace Vault.Benchmarks;

/// <summary>Scenario names as given on the command line.</summary>
internal static class ScenarioNames
{
    public const string Echo = "echo";
    public const string KvGet = "kv-get";
    public const string KvPut = "kv-put";
}
