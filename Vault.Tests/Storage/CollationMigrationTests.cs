using Microsoft.Extensions.Time.Testing;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;
using Vault.Tests.Rotation;

namespace Vault.Tests.Storage;

/// <summary>
/// Data directories written before names compared exactly (LiteDB's default collation: culture
/// aware, case-insensitive) open with every record intact, and from then on keep names that
/// differ only in case apart. The fixture under Fixtures/datadir-v1 was written by the server
/// of commit 7f94656 (see Fixtures/README.md).
/// </summary>
public sealed class CollationMigrationTests
{
    /// <summary>Just after the fixture's last audit entry (2026-12-03T09:30:34Z).</summary>
    private static readonly DateTimeOffset WrittenAt = new(2026, 12, 3, 9, 31, 0, TimeSpan.Zero);

    [Fact]
    public async Task ADataDirectoryFromBeforeExactNames_OpensWithEveryRecord_AndThenKeepsCaseApart()
    {
        var tokens = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Storage", "Fixtures", "datadir-v1.tokens"))
            .Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        var dir = Directory.CreateTempSubdirectory("vault-migrate-").FullName;
        CopyDirectory(Path.Combine(AppContext.BaseDirectory, "Storage", "Fixtures", "datadir-v1"), dir);
        // The directory's tokens and AppRole secret id have TTLs counted from when it was written
        // (a secret id lives 24 hours): the server runs on a clock set just after that moment, or the
        // test would start failing a day after the fixture was made, as it once did.
        var clock = new FakeTimeProvider(WrittenAt);
        await using var vault = await TestVault.OpenOnAsync(dir, tokens["root"], clock);
        await vault.UnsealAsync();

        var expected = new Dictionary<string, string>
        {
            ["apps/Billing/db"] = "billing-v2",
            ["apps/billing/api"] = "lower-v1",
            ["Team/ABC/key"] = "abc-v1",
            ["caf\u00e9/nfc"] = "nfc-v1",
            ["a_b/x"] = "underscore-v1",
            ["a%b/y"] = "percent-v1",
        };
        foreach (var (path, value) in expected)
        {
            Assert.Equal(value, (await vault.Kv.GetAsync(new GetSecretRequest { Path = path }, vault.As())).Data["value"]);
        }
        Assert.Equal("billing-v1", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "apps/Billing/db", Version = 1 }, vault.As())).Data["value"]);
        var meta = await vault.Kv.GetMetadataAsync(new GetMetadataRequest { Path = "apps/Billing/db" }, vault.As());
        Assert.Equal(5u, meta.MaxVersions);
        Assert.Equal("team-a", meta.CustomMetadata["Owner"]);
        Assert.Equal("42", meta.CustomMetadata["Cost-Centre"]);
        Assert.Equal(["Billing/", "billing/"], (await vault.Kv.ListAsync(new ListSecretsRequest { Prefix = "apps" }, vault.As())).Keys);
        Assert.Equal(["x"], (await vault.Kv.ListAsync(new ListSecretsRequest { Prefix = "a_b" }, vault.As())).Keys);

        Assert.Equal("kv/apps/Billing/*", Assert.Single((await vault.Policies.GetAsync(new GetPolicyRequest { Name = "Readers" }, vault.As())).Rules).Path);
        await vault.Policies.GetAsync(new GetPolicyRequest { Name = "writers" }, vault.As());
        Assert.Equal("billing-v2", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "apps/Billing/db" }, vault.As(tokens["readers"]))).Data["value"]);
        var approles = new AppRoleService.AppRoleServiceClient(vault.Channel);
        var login = await approles.LoginAsync(new AppRoleLoginRequest { RoleId = tokens["role_id"], SecretId = tokens["secret_id"] });
        Assert.Equal(["Readers"], login.Info.Policies);
        var target = await vault.Targets().GetTargetAsync(new GetTargetRequest { Name = "Pg-Main" }, vault.As());
        Assert.Equal("App", target.Account);
        Assert.Equal("disable", target.Connection.Options["ssl_mode"]);
        Assert.Equal("app-current-pw", (await vault.Targets().GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = "Pg-Main" }, vault.As())).Password);
        var leases = new LeaseService.LeaseServiceClient(vault.Channel);
        Assert.Equal("Pg-Main", (await leases.GetDynamicRoleAsync(new GetDynamicRoleRequest { Name = "Ro-Role" }, vault.As())).Target);
        Assert.Equal(["Pg-Main"], (await leases.GetCheckoutSetAsync(new GetCheckoutSetRequest { Name = "Svc-Pool" }, vault.As())).Targets);
        Assert.Empty(Directory.GetFiles(dir, "*backup*"));

        // Migrated: a name that differs only in case is another record, also in the data file.
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "apps/BILLING/db", Data = { ["value"] = "other" } }, vault.As());
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "READERS", Rules = { new PolicyRule { Path = "kv/x/*", Capabilities = { "read" } } } } }, vault.As());
        vault.FlushStore();
        await vault.RestartAsync();
        await vault.UnsealAsync();
        Assert.Equal("billing-v2", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "apps/Billing/db" }, vault.As(tokens["readers"]))).Data["value"]);
        Assert.Equal("other", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "apps/BILLING/db" }, vault.As())).Data["value"]);
        Assert.Equal("kv/apps/Billing/*", Assert.Single((await vault.Policies.GetAsync(new GetPolicyRequest { Name = "Readers" }, vault.As())).Rules).Path);
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }
        foreach (var sub in Directory.GetDirectories(from))
        {
            CopyDirectory(sub, Path.Combine(to, Path.GetFileName(sub)));
        }
    }
}
