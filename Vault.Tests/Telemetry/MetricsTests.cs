using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Telemetry;

/// <summary>
/// The Prometheus scrape endpoint of a vault process, on its own listener, read with a real HTTP
/// client: the exposition passes <c>promtool check metrics</c>, values move after known actions (a
/// rotation that fails against a real PostgreSQL), the listener serves nothing but <c>/metrics</c>,
/// and a token file makes it ask for the token.
/// </summary>
public sealed class MetricsTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    private const string Promtool = "/usr/bin/promtool";

    [Fact]
    public async Task Scrape_PassesPromtool_AndAFailedRotationMovesItsCounterAndTheFailingGauge()
    {
        await using var metered = await MeteredVault.StartAsync();
        var (server, auth) = (metered.Server, metered.Auth);
        using var http = metered.Scraper();
        var before = await ScrapeAsync(http);

        // A target whose certificate check fails (another CA): its rotation fails before anything is sent.
        using var other = new TestCertificates("Another CA");
        var system = systems.Postgres;
        var account = await system.CreateAccountAsync("Initial-" + Guid.NewGuid().ToString("N"));
        var admin = await RotationKit.PutAdminSecretAsync(new KvService.KvServiceClient(server.Channel), auth, system);
        var name = RotationKit.UniqueName("metrics");
        var target = RotationKit.Describe(system, name, account, admin);
        target.Connection.CaCertificates = other.CaPem;
        var targets = new TargetService.TargetServiceClient(server.Channel);
        await targets.PutTargetAsync(new PutTargetRequest { Target = target, CurrentPassword = "unused", SkipVerification = true }, auth);
        var rotated = await targets.RotateTargetAsync(new RotateTargetRequest { Name = name }, auth);
        // And one that, on purpose, does not check the certificate: the metrics flag it, as target show does.
        var uncheckedTarget = RotationKit.Describe(system, RotationKit.UniqueName("unchecked"), account, admin);
        uncheckedTarget.Connection.Options["ssl_mode"] = "require";
        await targets.PutTargetAsync(new PutTargetRequest { Target = uncheckedTarget, CurrentPassword = "unused", SkipVerification = true }, auth);
        var after = await ScrapeAsync(http);

        Assert.Equal(RotationOutcome.Failed, rotated.Event.Outcome);
        Assert.Equal(0, Value(before, $@"vault_rotation_outcomes_total\{{[^}}]*vault_target_name=""{name}""[^}}]*\}}") ?? 0);
        Assert.Equal(1, Value(after, $@"vault_rotation_outcomes_total\{{(?=[^}}]*vault_rotation_outcome=""failed"")(?=[^}}]*vault_target_kind=""postgres"")[^}}]*vault_target_name=""{name}""[^}}]*\}}"));
        Assert.Equal(0, Value(before, @"vault_rotation_targets\{[^}]*state=""failing""[^}]*\}"));
        Assert.Equal(1, Value(after, @"vault_rotation_targets\{[^}]*state=""failing""[^}]*\}"));
        Assert.Equal(0, Value(after, @"vault_seal_sealed(\{[^}]*\})?"));
        // The failed rotation is retried with backoff: due again within the hour (RetryMax), not overdue.
        var nextDue = Value(after, $@"vault_rotation_next_due_seconds\{{[^}}]*vault_target_name=""{name}""[^}}]*\}}");
        Assert.True(nextDue is > -60 and <= 3600, $"the failed target is next due in {nextDue} s");
        Assert.Equal(0, Value(after, @"vault_rotation_targets\{[^}]*state=""overdue""[^}]*\}"));
        Assert.Equal(0, Value(before, @"vault_rotation_targets\{[^}]*state=""unverified_tls""[^}]*\}") ?? 0);
        Assert.Equal(1, Value(after, @"vault_rotation_targets\{[^}]*state=""unverified_tls""[^}]*\}"));
        // The writes above were group commits of the store and audited.
        Assert.True(Value(after, @"vault_store_commit_duration_seconds_count(\{[^}]*\})?") >= 1, "no store commit in the histogram");
        Assert.True(Value(after, @"vault_audit_write_duration_seconds_count(\{[^}]*\})?") >= 1, "no audit write in the histogram");
        Assert.NotNull(Value(after, @"vault_store_pending_bytes(\{[^}]*\})?"));
        Assert.True(Value(after, @"vault_store_wal_written_bytes_total(\{[^}]*\})?") > 0, "no bytes counted into the write-ahead log");
        Assert.True(Value(after, @"vault_store_wal_fsync_duration_seconds_count(\{[^}]*\})?") >= 1, "no fsync in the histogram");
        // Reading the target back (and every token check) found documents in memory.
        Assert.True(Value(after, @"vault_store_cache_lookups_total\{[^}]*result=""hit""[^}]*\}") >= 1, "no read-cache hit counted");
        Assert.NotNull(Value(after, @"vault_store_cache_size_bytes(\{[^}]*\})?"));
        Assert.Equal(0, Value(after, @"vault_audit_queue(\{[^}]*\})?"));
        Assert.Equal(1, Value(after, @"vault_serving(\{[^}]*\})?"));
        Assert.Equal(1, Value(after, @"vault_rotation_duration_seconds_count\{(?=[^}]*vault_rotation_outcome=""failed"")[^}]*vault_target_kind=""postgres""[^}]*\}"));
        Assert.True(Value(after, @"rpc_server_call_duration_seconds_count\{(?=[^}]*rpc_method=""RotateTarget"")(?=[^}]*rpc_grpc_status_code=""0"")[^}]*\}") >= 1, "the RotateTarget call is not in the RPC histogram");
        await AssertPromtoolAcceptsAsync(after);
    }

    [Fact]
    public async Task ACheckout_MovesTheLentGauge_AndCheckingInMovesItBack()
    {
        await using var metered = await MeteredVault.StartAsync();
        var (server, auth) = (metered.Server, metered.Auth);
        var system = systems.Postgres;
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await system.CreateAccountAsync(initial);
        var admin = await RotationKit.PutAdminSecretAsync(new KvService.KvServiceClient(server.Channel), auth, system);
        var target = RotationKit.UniqueName("lent");
        await new TargetService.TargetServiceClient(server.Channel).PutTargetAsync(new PutTargetRequest { Target = RotationKit.Describe(system, target, account, admin), CurrentPassword = initial }, auth);
        var set = RotationKit.UniqueName("set");
        var leases = new LeaseService.LeaseServiceClient(server.Channel);
        await leases.PutCheckoutSetAsync(new PutCheckoutSetRequest { Set = new CheckoutSet { Name = set, Targets = { target } } }, auth);
        using var http = metered.Scraper();
        var lent = $@"vault_leases\{{(?=[^}}]*vault_lease_kind=""checkout"")(?=[^}}]*vault_lease_owner=""{set}"")[^}}]*vault_lease_state=""active""[^}}]*\}}";

        var waiters = $@"vault_checkout_waiters\{{[^}}]*vault_lease_owner=""{set}""[^}}]*\}}";

        var before = Value(await ScrapeAsync(http), lent) ?? 0;
        var checkedOut = await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = set }, auth);
        var during = await ScrapeAsync(http);
        // A second caller waits for the account: the waiters gauge counts it until it is served.
        var waiting = leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = set, Wait = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromMinutes(2)) }, auth).ResponseAsync;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Value(await ScrapeAsync(http), waiters) != 1)
        {
            Assert.True(DateTime.UtcNow < deadline, "the waiting caller never showed in vault_checkout_waiters");
            await Task.Delay(100);
        }
        await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = checkedOut.Lease.Id }, auth);
        var served = await waiting;
        var handedOn = await ScrapeAsync(http);
        await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = served.Lease.Id }, auth);
        var after = Value(await ScrapeAsync(http), lent) ?? 0;

        Assert.Equal(0, before);
        Assert.Equal(1, Value(during, lent));
        Assert.Equal(0, Value(during, waiters));
        Assert.Equal(1, Value(handedOn, lent));
        Assert.Equal(0, Value(handedOn, waiters));
        Assert.Equal(0, after);
    }

    [Fact]
    public async Task FailedLogins_LockAUserOut_AndTheGaugeSaysSo_AsTheActiveTokensGaugeCountsTokens()
    {
        await using var metered = await MeteredVault.StartAsync();
        var userpass = new UserpassService.UserpassServiceClient(metered.Server.Channel);
        var name = RotationKit.UniqueName("person");
        await userpass.PutUserAsync(new PutUserRequest { User = new User { Name = name }, Password = "Correct-" + Guid.NewGuid().ToString("N") }, metered.Auth);
        using var http = metered.Scraper();
        var before = await ScrapeAsync(http);

        for (var attempt = 0; attempt < 5; attempt++)
        {
            await Assert.ThrowsAsync<RpcException>(async () => await userpass.LoginAsync(new UserpassLoginRequest { Username = name, Password = "wrong" }));
        }
        var after = await ScrapeAsync(http);

        Assert.Equal(0, Value(before, @"vault_userpass_locked_out(\{[^}]*\})?"));
        Assert.Equal(1, Value(after, @"vault_userpass_locked_out(\{[^}]*\})?"));
        // The root token from init.
        Assert.Equal(1, Value(after, @"vault_tokens_active(\{[^}]*\})?"));
    }

    [Fact]
    public async Task Sealing_TurnsServingOff_AndSealedOn()
    {
        await using var metered = await MeteredVault.StartAsync();
        using var http = metered.Scraper();
        var before = await ScrapeAsync(http);

        await new SystemService.SystemServiceClient(metered.Server.Channel).SealAsync(new SealRequest(), metered.Auth);
        var after = await ScrapeAsync(http);

        Assert.Equal((1, 0), (Value(before, @"vault_serving(\{[^}]*\})?"), Value(before, @"vault_seal_sealed(\{[^}]*\})?")));
        Assert.Equal((0, 1), (Value(after, @"vault_serving(\{[^}]*\})?"), Value(after, @"vault_seal_sealed(\{[^}]*\})?")));
    }

    [Fact]
    public async Task TheListener_ServesOnlyMetrics_AndWithATokenFile_OnlyToTheToken()
    {
        var port = ServerHost.FreePort();
        var dir = Directory.CreateTempSubdirectory("vault-metrics-").FullName;
        var tokenFile = Path.Combine(dir, "metrics-token");
        var token = Guid.NewGuid().ToString("N");
        await File.WriteAllTextAsync(tokenFile, token + "\n");
        await using var server = new VaultProcess(Path.Combine(dir, "data"));
        await server.StartAsync("--metrics-listen", $"127.0.0.1:{port}", "--metrics-token-file", tokenFile);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

        using var anonymous = await http.GetAsync(new Uri("/metrics", UriKind.Relative));
        using var wrong = await SendAsync(http, "/metrics", "not-the-token");
        using var right = await SendAsync(http, "/metrics", token);
        using var grpcPath = await SendAsync(http, "/vault.v1.SystemService/Status", token);
        using var onTheApi = await new HttpClient().GetAsync(new Uri(server.Address + "/metrics"));

        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Equal(HttpStatusCode.OK, right.StatusCode);
        Assert.Contains("vault_seal_sealed", await right.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, grpcPath.StatusCode);
        // The API listener speaks HTTP/2 only and has no such path: no metrics there.
        Assert.NotEqual(HttpStatusCode.OK, onTheApi.StatusCode);
        Assert.DoesNotContain(token, server.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheAlertRulesPassPromtool_AndTheyAndTheDashboardUseOnlyMetricsTheVaultExports()
    {
        var root = RepositoryFiles.Root();
        var rules = Path.Combine(root, "deploy", "prometheus", "alerts.yml");
        var dashboard = Path.Combine(root, "deploy", "grafana", "vault.json");
        var (code, output) = await RunPromtoolAsync(["check", "rules", rules], "");
        Assert.True(code == 0, $"promtool check rules failed ({code}):\n{output}");

        // A vault with each kind of series present: an answered RPC, a finished (failed) rotation.
        await using var metered = await MeteredVault.StartAsync();
        var (server, auth) = (metered.Server, metered.Auth);
        await new KvService.KvServiceClient(server.Channel).PutAsync(new PutSecretRequest { Path = "infra/none", Data = { ["username"] = "a", ["password"] = "b" } }, auth);
        var targets = new TargetService.TargetServiceClient(server.Channel);
        await targets.PutTargetAsync(new PutTargetRequest
        {
            Target = new Target { Name = "nowhere", Kind = "postgres", Connection = new TargetConnection { Host = "127.0.0.1", Port = 1 }, Account = "app", AdminSecret = "infra/none" },
            CurrentPassword = "x",
            SkipVerification = true,
        }, auth);
        await targets.RotateTargetAsync(new RotateTargetRequest { Name = "nowhere" }, auth);
        // And an account checked out, for the lease and check-out series.
        var system = systems.Postgres;
        var initial = $"Initial-{Guid.NewGuid():N}";
        var lentTarget = RotationKit.UniqueName("lent");
        await targets.PutTargetAsync(new PutTargetRequest
        {
            Target = RotationKit.Describe(system, lentTarget, await system.CreateAccountAsync(initial), await RotationKit.PutAdminSecretAsync(new KvService.KvServiceClient(server.Channel), auth, system)),
            CurrentPassword = initial,
        }, auth);
        var leases = new LeaseService.LeaseServiceClient(server.Channel);
        await leases.PutCheckoutSetAsync(new PutCheckoutSetRequest { Set = new CheckoutSet { Name = "lending", Targets = { lentTarget } } }, auth);
        var lent = await leases.CheckoutAccountAsync(new CheckoutAccountRequest { Set = "lending" }, auth);
        using var http = metered.Scraper();
        var scrape = await ScrapeAsync(http);
        // Metric names, and the label names the queries group and filter by.
        var exported = Regex.Matches(scrape, @"(?m)^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]").Select(m => m.Groups[1].Value)
            .Concat(Regex.Matches(scrape, @"[{,]([a-zA-Z_][a-zA-Z0-9_]*)=""").Select(m => m.Groups[1].Value))
            .ToHashSet(StringComparer.Ordinal);

        var used = new[] { await File.ReadAllTextAsync(rules), await File.ReadAllTextAsync(dashboard) }
            .SelectMany(text => Regex.Matches(text, @"\b(?:vault|rpc_server)_[a-z0-9_]+").Select(m => m.Value))
            .ToHashSet(StringComparer.Ordinal);
        Assert.Contains("vault_access_break_glass_total", used);
        Assert.Empty(used.Where(name => !exported.Contains(name)).Order(StringComparer.Ordinal));
        using var json = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(dashboard));
        Assert.True(json.RootElement.GetProperty("panels").GetArrayLength() >= 8);
        await leases.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = lent.Lease.Id }, auth);
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient http, string path, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(path, UriKind.Relative));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await http.SendAsync(request);
    }

    private static async Task<string> ScrapeAsync(HttpClient http)
    {
        using var response = await http.GetAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>The value of the one sample whose name and labels match <paramref name="series"/>, or null.</summary>
    private static double? Value(string exposition, string series)
    {
        var matches = Regex.Matches(exposition, $@"(?m)^{series} ([0-9.eE+-]+)");
        Assert.True(matches.Count <= 1, $"{matches.Count} samples match {series}");
        return matches.Count == 0 ? null : double.Parse(matches[0].Groups[^1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task AssertPromtoolAcceptsAsync(string exposition)
    {
        var (code, output) = await RunPromtoolAsync(["check", "metrics"], exposition);
        Assert.True(code == 0, $"promtool check metrics failed ({code}):\n{output}");
    }

    private static async Task<(int ExitCode, string Output)> RunPromtoolAsync(string[] args, string stdin)
    {
        Assert.True(File.Exists(Promtool), "promtool is not installed: apt-get install -y prometheus");
        var info = new ProcessStartInfo(Promtool, args) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(info)!;
        await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        var output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, output);
    }

    /// <summary>An initialised vault process with its metrics listener on a free loopback port.</summary>
    private sealed class MeteredVault : IAsyncDisposable
    {
        private readonly int _port;

        private MeteredVault(VaultProcess server, int port, CallOptions auth) => (Server, _port, Auth) = (server, port, auth);

        public VaultProcess Server { get; }

        /// <summary>Call options carrying the root token.</summary>
        public CallOptions Auth { get; }

        public static async Task<MeteredVault> StartAsync()
        {
            var port = ServerHost.FreePort();
            var server = new VaultProcess(Directory.CreateTempSubdirectory("vault-metrics-").FullName);
            try
            {
                await server.StartAsync("--metrics-listen", $"127.0.0.1:{port}");
                var init = await new SystemService.SystemServiceClient(server.Channel).InitAsync(new InitRequest { Passphrase = TestVault.Passphrase, Kdf = TestVault.FastKdf });
                return new MeteredVault(server, port, new CallOptions(new Metadata { { "authorization", "Bearer " + init.RootToken } }));
            }
            catch
            {
                await server.DisposeAsync();
                throw;
            }
        }

        /// <summary>An HTTP client on the metrics listener, as Prometheus would be.</summary>
        public HttpClient Scraper() => new() { BaseAddress = new Uri($"http://127.0.0.1:{_port}") };

        public ValueTask DisposeAsync() => Server.DisposeAsync();
    }
}
