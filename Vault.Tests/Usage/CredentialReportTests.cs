using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Vault.Protocol.V1;
using Vault.Server.Usage;
using Vault.Tests.Cli;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Usage;

/// <summary>
/// The zombie-credential report on a vault whose clock the test moves: items made a month ago and
/// not used since are listed, exactly; items used or made within the period are not; last uses
/// survive a restart; <c>--prune</c> is a dry run until <c>--yes</c>, then revokes exactly the
/// prunable items (each its own audited request), which then fail while the rest still work.
/// </summary>
public sealed class CredentialReportTests
{
    private static readonly TimeSpan Month = TimeSpan.FromDays(31);
    private const string Password = "a long passphrase for the report";

    private sealed class Prepared
    {
        public required TestVault Vault { get; init; }
        public required FakeTimeProvider Clock { get; init; }
        public required (string Token, string Accessor) AgedToken { get; init; }
        public required (string Token, string Accessor) UsedToken { get; init; }
        public required (string Token, string Accessor) FreshToken { get; init; }
        public required string RoleId { get; init; }
        public required (string SecretId, string Accessor) AgedSecretId { get; init; }
        public required (string SecretId, string Accessor) UsedSecretId { get; init; }
        public required (string SecretId, string Accessor) FreshSecretId { get; init; }
    }

    /// <summary>
    /// A month ago: two tokens, two secret ids, two secrets, a person who never logs in and one who
    /// does. Now: one of each pair is used, and a fresh one of each is made.
    /// </summary>
    private static async Task<Prepared> PrepareAsync()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var vault = await StartTrackedAsync(clock);
        var tokens = new TokenService.TokenServiceClient(vault.Channel);
        var roles = new AppRoleService.AppRoleServiceClient(vault.Channel);
        var identity = new IdentityService.IdentityServiceClient(vault.Channel);
        var users = new UserpassService.UserpassServiceClient(vault.Channel);

        async Task<(string, string)> TokenAsync(string name)
        {
            var created = await tokens.CreateAsync(new CreateTokenRequest
            {
                DisplayName = name, Policies = { "default" }, Ttl = Duration(TimeSpan.FromDays(90)), MaxTtl = Duration(TimeSpan.FromDays(90)),
            }, vault.As());
            return (created.Token, created.Info.Accessor);
        }
        async Task<(string, string)> SecretIdAsync()
        {
            var issued = await roles.CreateSecretIdAsync(new CreateSecretIdRequest { Name = "app" }, vault.As());
            return (issued.SecretId, issued.SecretIdAccessor);
        }

        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "default", Rules = { new PolicyRule { Path = "kv/app/*", Capabilities = { "read" } } } } }, vault.As());
        var aged = await TokenAsync("aged");
        var used = await TokenAsync("used");
        await roles.PutRoleAsync(new PutRoleRequest { Role = new Role { Name = "app", Policies = { "default" }, SecretIdTtl = Duration(TimeSpan.FromDays(90)) } }, vault.As());
        var roleId = (await roles.GetRoleIdAsync(new GetRoleIdRequest { Name = "app" }, vault.As())).RoleId;
        var agedSecretId = await SecretIdAsync();
        var usedSecretId = await SecretIdAsync();
        foreach (var path in new[] { "app/unread", "app/read" })
        {
            await vault.Kv.PutAsync(new PutSecretRequest { Path = path, Data = { ["password"] = "s3cret-" + path } }, vault.As());
        }
        await identity.PutEntityAsync(new PutEntityRequest { Entity = new Entity { Name = "dormant" } }, vault.As());
        await users.PutUserAsync(new PutUserRequest { User = new User { Name = "active" }, Password = Password }, vault.As());

        clock.Advance(Month);

        // Used now: a token by a request, a secret id by a login, a secret by a read, a person by a login.
        await tokens.LookupAsync(new LookupTokenRequest(), vault.As(used.Item1));
        await roles.LoginAsync(new AppRoleLoginRequest { RoleId = roleId, SecretId = usedSecretId.Item1 });
        await vault.Kv.GetAsync(new GetSecretRequest { Path = "app/read" }, vault.As(used.Item1));
        await users.LoginAsync(new UserpassLoginRequest { Username = "active", Password = Password });
        // Made now: too young to be unused.
        var fresh = await TokenAsync("fresh");
        var freshSecretId = await SecretIdAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "app/new", Data = { ["password"] = "new" } }, vault.As());
        await identity.PutEntityAsync(new PutEntityRequest { Entity = new Entity { Name = "newcomer" } }, vault.As());

        return new Prepared
        {
            Vault = vault, Clock = clock, AgedToken = aged, UsedToken = used, FreshToken = fresh, RoleId = roleId,
            AgedSecretId = agedSecretId, UsedSecretId = usedSecretId, FreshSecretId = freshSecretId,
        };
    }

    /// <summary>A vault on <paramref name="clock"/> whose tracking has begun (at the first reaper pass after the unseal), so "a month ago" is inside it.</summary>
    private static async Task<TestVault> StartTrackedAsync(FakeTimeProvider clock)
    {
        var vault = await TestVault.StartInitializedOnAsync(clock);
        var tracker = vault.Services.GetRequiredService<UsageTracker>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (tracker.TrackedSince() is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "tracking never began");
            await Task.Delay(10);
        }
        return vault;
    }

    private static Google.Protobuf.WellKnownTypes.Duration Duration(TimeSpan value) => Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(value);

    private static Task<CredentialReport> ReportAsync(TestVault vault, TimeSpan? unusedFor = null) =>
        new ReportService.ReportServiceClient(vault.Channel).CredentialsAsync(
            new CredentialReportRequest { UnusedFor = unusedFor is { } u ? Duration(u) : null }, vault.As()).ResponseAsync;

    private static string[] Lines(CredentialReport report) =>
        report.Items.Select(i => $"{i.Kind} {i.Id} {i.Reason}{(i.Prunable ? " prunable" : "")}").ToArray();

    [Fact]
    public async Task ListsExactlyTheAgedItems_AndTheUsesSurviveARestart()
    {
        var p = await PrepareAsync();
        await using var vault = p.Vault;
        string[] expected =
        [
            $"kv_secret app/unread not_read",
            $"person dormant never_logged_in",
            $"secret_id app/{p.AgedSecretId.Accessor} never_used prunable",
            $"token {p.AgedToken.Accessor} never_used prunable",
        ];

        Assert.Equal(expected, Lines(await ReportAsync(vault)));

        // The uses were in memory; a clean stop stores them, and the report after it is the same.
        await vault.RestartAsync();
        await vault.UnsealAsync();
        var report = await ReportAsync(vault);
        Assert.Equal(expected, Lines(report));
        Assert.Equal(TimeSpan.FromDays(30), report.UnusedFor.ToTimeSpan());
        Assert.True(report.TrackedSince.ToDateTimeOffset() <= p.Clock.GetUtcNow() - Month, $"tracked since {report.TrackedSince}");

        // With a longer period, nothing made a month ago is old enough.
        Assert.Empty(Lines(await ReportAsync(vault, TimeSpan.FromDays(60))));

        // A day later, with a period of a day, what was used or made "now" is unused too.
        p.Clock.Advance(TimeSpan.FromDays(2));
        var dayLater = Lines(await ReportAsync(vault, TimeSpan.FromDays(1)));
        Assert.Contains($"token {p.UsedToken.Accessor} unused prunable", dayLater);
        Assert.Contains($"secret_id app/{p.UsedSecretId.Accessor} unused prunable", dayLater);
        Assert.Contains("kv_secret app/read not_read", dayLater);
        Assert.Contains("person active not_logged_in", dayLater);
        Assert.Contains($"token {p.FreshToken.Accessor} never_used prunable", dayLater);
    }

    [Fact]
    public async Task Prune_IsADryRunUntilYes_ThenRevokesExactlyThePrunable_WhichThenFail()
    {
        var p = await PrepareAsync();
        await using var vault = p.Vault;
        var cli = new VaultCtl(vault.Address, vault.RootToken);
        var tokens = new TokenService.TokenServiceClient(vault.Channel);
        var roles = new AppRoleService.AppRoleServiceClient(vault.Channel);

        var dryRun = (await cli.RunAsync("report", "credentials", "--prune")).Ok();
        Assert.Contains("dry run: nothing revoked", dryRun, StringComparison.Ordinal);
        Assert.Contains(p.AgedToken.Accessor, dryRun, StringComparison.Ordinal);
        // Nothing happened (looked up by accessor, as root: the aged token itself stays unused).
        await tokens.LookupAsync(new LookupTokenRequest { Accessor = p.AgedToken.Accessor }, vault.As());
        var listed = (await ReportAsync(vault)).Items.Where(i => i.Prunable).Select(i => $"{i.Kind} {i.Id}").ToHashSet();
        Assert.Equal([$"secret_id app/{p.AgedSecretId.Accessor}", $"token {p.AgedToken.Accessor}"], listed.Order(StringComparer.Ordinal));

        var pruned = (await cli.RunAsync("report", "credentials", "--prune", "--yes", "--json")).Json();
        Assert.False(pruned.GetProperty("dry_run").GetBoolean());
        var outcomes = pruned.GetProperty("items").EnumerateArray()
            .ToDictionary(i => $"{i.GetProperty("kind").GetString()} {i.GetProperty("id").GetString()}", i => i.GetProperty("outcome").GetString());
        Assert.Equal(listed.Order(StringComparer.Ordinal), outcomes.Keys.Order(StringComparer.Ordinal));
        Assert.All(outcomes.Values, o => Assert.Equal("revoked", o));

        // The revoked fail; the rest still work.
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => tokens.LookupAsync(new LookupTokenRequest(), vault.As(p.AgedToken.Token)).ResponseAsync);
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => roles.LoginAsync(new AppRoleLoginRequest { RoleId = p.RoleId, SecretId = p.AgedSecretId.SecretId }).ResponseAsync);
        await tokens.LookupAsync(new LookupTokenRequest(), vault.As(p.UsedToken.Token));
        await tokens.LookupAsync(new LookupTokenRequest(), vault.As(p.FreshToken.Token));
        await roles.LoginAsync(new AppRoleLoginRequest { RoleId = p.RoleId, SecretId = p.UsedSecretId.SecretId });
        await roles.LoginAsync(new AppRoleLoginRequest { RoleId = p.RoleId, SecretId = p.FreshSecretId.SecretId });
        await vault.Kv.GetAsync(new GetSecretRequest { Path = "app/unread" }, vault.As());

        // Every revocation is its own audited request, naming what it revoked.
        var audit = await new AuditService.AuditServiceClient(vault.Channel).TailAsync(new TailAuditRequest { Limit = 200 }, vault.As());
        Assert.Contains(audit.Entries, e => e.Rpc.EndsWith("TokenService/Revoke", StringComparison.Ordinal) && e.Path.Contains(p.AgedToken.Accessor, StringComparison.Ordinal) && e.Outcome == "ok");
        Assert.Contains(audit.Entries, e => e.Rpc.EndsWith("AppRoleService/DestroySecretId", StringComparison.Ordinal) && e.Outcome == "ok");

        // Nothing prunable is left.
        Assert.DoesNotContain((await ReportAsync(vault)).Items, i => i.Prunable);
    }

    [Fact]
    public async Task AParentToken_IsNotPrunable_WhileAChildOfItIsUsed()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await StartTrackedAsync(clock);
        var tokens = new TokenService.TokenServiceClient(vault.Channel);
        var parent = await tokens.CreateAsync(new CreateTokenRequest { Ttl = Duration(TimeSpan.FromDays(90)), MaxTtl = Duration(TimeSpan.FromDays(90)) }, vault.As());
        var child = await tokens.CreateAsync(new CreateTokenRequest { Ttl = Duration(TimeSpan.FromDays(80)), MaxTtl = Duration(TimeSpan.FromDays(80)) }, vault.As(parent.Token));
        clock.Advance(Month);
        await tokens.LookupAsync(new LookupTokenRequest(), vault.As(child.Token));

        // The parent was used a month ago (to make the child), not since; revoking it would revoke the child.
        var item = Assert.Single((await ReportAsync(vault)).Items);
        Assert.Equal((parent.Info.Accessor, "unused", false), (item.Id, item.Reason, item.Prunable));
    }

    [Fact]
    public async Task TheLastUsesOfItemsThatAreGone_AreDroppedBySweep()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var tracker = vault.Services.GetRequiredService<UsageTracker>();
        var store = vault.Services.GetRequiredService<Vault.Server.Storage.IVaultStore>();
        var tokens = new TokenService.TokenServiceClient(vault.Channel);
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "gone/soon", Data = { ["k"] = "v" } }, vault.As());
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "kept/here", Data = { ["k"] = "v" } }, vault.As());
        await vault.Kv.GetAsync(new GetSecretRequest { Path = "gone/soon" }, vault.As());
        await vault.Kv.GetAsync(new GetSecretRequest { Path = "kept/here" }, vault.As());
        var child = await tokens.CreateAsync(new CreateTokenRequest(), vault.As());
        await tokens.LookupAsync(new LookupTokenRequest(), vault.As(child.Token));
        await tracker.FlushAsync(CancellationToken.None);
        bool Stored(string id) => store.Get<UsageRecord>(Vault.Server.Storage.Collections.Usage, id) is not null;
        Assert.True(Stored("kv/gone/soon") && Stored("kv/kept/here") && Stored($"token/{child.Info.Accessor}"), "the uses were not stored");

        await vault.Kv.DeleteMetadataAsync(new DeleteMetadataRequest { Path = "gone/soon" }, vault.As());
        await tokens.RevokeAsync(new RevokeTokenRequest { Accessor = child.Info.Accessor }, vault.As());
        // Revoking forgets the token's at once; a sweep finds the secret's gone.
        Assert.False(Stored($"token/{child.Info.Accessor}"));
        // (The reaper's own first sweep may have run meanwhile: what counts is what is left.)
        await tracker.SweepAsync(CancellationToken.None);

        Assert.False(Stored("kv/gone/soon"));
        Assert.True(Stored("kv/kept/here"));
        Assert.Equal(0, await tracker.SweepAsync(CancellationToken.None));
    }

    [Fact]
    public async Task AUseAfterThePrecision_IsStoredAgain_AndAnOlderUseNeverReplacesANewerStoredOne()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await StartTrackedAsync(clock);
        var store = vault.Services.GetRequiredService<Vault.Server.Storage.IVaultStore>();
        var barrier = vault.Services.GetRequiredService<Vault.Server.Crypto.SecurityBarrier>();
        // A tracker of its own on the vault's store and keys: the reaper's passes (woken by the
        // clock's moves) flush the vault's tracker, not this one, so each flush here is the test's.
        var tracker = new UsageTracker(store, barrier, clock, Microsoft.Extensions.Options.Options.Create(new UsageOptions()),
            Microsoft.Extensions.Logging.Abstractions.NullLogger<UsageTracker>.Instance);
        long? Stored(string id) => store.Get<UsageRecord>(Vault.Server.Storage.Collections.Usage, id)?.LastUsedAtUnixMs;
        long Now() => clock.GetUtcNow().ToUnixTimeMilliseconds();

        // Noted, stored; noted again past the precision (the throttle has let go of it): stored again.
        tracker.Used(UsageKind.Secret, "app/again");
        var first = Now();
        await tracker.FlushAsync(CancellationToken.None);
        Assert.Equal(first, Stored("kv/app/again"));
        clock.Advance(tracker.Precision * 2);
        tracker.Used(UsageKind.Secret, "app/again");
        var second = Now();
        await tracker.FlushAsync(CancellationToken.None);
        Assert.Equal(second, Stored("kv/app/again"));

        // A use noted here and kept past the precision (as while writes failed), while another node
        // stored a later use of the same item: the later one stays.
        tracker.Used(UsageKind.Secret, "app/elsewhere");
        var noted = Now();
        var later = new UsageRecord { LastUsedAtUnixMs = noted + 1000 };
        later.Seal = Vault.Server.Crypto.RecordSeal.Compute((purpose, value) => barrier.Hmac(purpose, value), Vault.Server.Storage.Collections.Usage, "kv/app/elsewhere", later.Canonical());
        await store.WriteAsync(tx =>
        {
            tx.Put(Vault.Server.Storage.Collections.Usage, "kv/app/elsewhere", later);
            return true;
        }, CancellationToken.None);
        clock.Advance(tracker.Precision * 2);
        await tracker.FlushAsync(CancellationToken.None);
        Assert.Equal(noted + 1000, Stored("kv/app/elsewhere"));
    }

    [Theory]
    [InlineData("unused_for", 30)]
    [InlineData("unused_for", 3650L * 24 * 3600 + 1)]
    [InlineData("checked_out_for", 0)]
    public async Task APeriodOutOfRange_IsInvalidArgument_NamingTheField(string field, long seconds)
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var request = new CredentialReportRequest();
        var value = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(seconds));
        if (field == "unused_for")
        {
            request.UnusedFor = value;
        }
        else
        {
            request.CheckedOutFor = value;
        }
        var ex = await Rpc.FailsWith(StatusCode.InvalidArgument, () => new ReportService.ReportServiceClient(vault.Channel).CredentialsAsync(request, vault.As()).ResponseAsync);
        Assert.StartsWith(field, ex.Status.Detail, StringComparison.Ordinal);
        var cli = await new VaultCtl(vault.Address, vault.RootToken).RunAsync("report", "credentials", "--yes");
        cli.OneLineError(1, "--yes");
    }
}
