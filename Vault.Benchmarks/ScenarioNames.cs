namespace Vault.Benchmarks;

/// <summary>Scenario names as given on the command line.</summary>
internal static class ScenarioNames
{
    public const string Echo = "echo";
    public const string KvGet = "kv-get";
    public const string KvGetScale = "kv-get-scale";
    /// <summary>kv-get on a vault that exports metrics (a scrape listener, the meter provider on), scraped once a second.</summary>
    public const string KvGetMetrics = "kv-get-metrics";
    public const string KvPut = "kv-put";
    public const string TokenLookup = "token-lookup";
    public const string LeaseCheckout = "lease-checkout";
    public const string Rotate = "rotate";
    public const string RotateFloor = "rotate-floor";
    public const string KvPutLarge = "kv-put-large";
    /// <summary>kv-get and kv-put on a vault whose records live in PostgreSQL (the run's server, loopback), beside the LiteDB rows.</summary>
    public const string KvGetPostgres = "kv-get-pg";
    public const string KvPutPostgres = "kv-put-pg";
    /// <summary>kv-get on the active node and on the standby of two nodes sharing a PostgreSQL database (the same secrets and token).</summary>
    public const string KvGetActive = "kv-get-active";
    public const string KvGetStandby = "kv-get-standby";
    /// <summary>kv-put on the active node of those two (each commit also tells the standby).</summary>
    public const string KvPutActive = "kv-put-active";

    /// <summary>Every scenario, in the order they run at each point of the sweep (echo first).</summary>
    public static readonly string[] All = [Echo, KvGet, KvGetMetrics, KvGetPostgres, KvGetActive, KvGetStandby, KvGetScale, KvPut, KvPutPostgres, KvPutActive, TokenLookup, LeaseCheckout, Rotate, RotateFloor, KvPutLarge];

    /// <summary>What <c>--scenario all</c> (the default) runs: everything but the scale run, which seeds
    /// 100,000 secrets, and kv-put-large, which is a memory test with a report of its own.</summary>
    public static readonly string[] Default = [Echo, KvGet, KvPut, TokenLookup, LeaseCheckout, Rotate, RotateFloor];

    /// <summary>Scenarios whose requests carry <c>--payload</c> bytes; the others run at the reference payload only.</summary>
    public static bool UsesPayload(string scenario) => scenario is Echo or KvGet or KvPut;

    /// <summary>Scenarios that need the run's PostgreSQL server.</summary>
    public static bool UsesPostgres(string scenario) => scenario is LeaseCheckout or Rotate or RotateFloor or KvGetPostgres or KvPutPostgres or KvGetActive or KvGetStandby or KvPutActive;

    /// <summary>Scenarios measured at the reference payload only, on a vault of their own.</summary>
    public static bool ReferenceOnly(string scenario) => scenario is KvGetScale or KvGetMetrics or KvGetPostgres or KvPutPostgres or KvGetActive or KvGetStandby or KvPutActive;
}
