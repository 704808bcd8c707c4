using Grpc.Core;
using Grpc.Health.V1;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Audit;

public sealed class AuditTrailTests
{
    private static AuditService.AuditServiceClient Audit(TestVault vault) => new(vault.Channel);

    private static string AuditDir(TestVault vault) => Path.Combine(vault.DataDir, "audit");

    private static string AuditFile(TestVault vault) => Directory.GetFiles(AuditDir(vault), "audit-*.jsonl").Order(StringComparer.Ordinal).Last();

    [Fact]
    public async Task EveryCall_LeavesExactlyOneEntry_WithAccessorRpcPathAndOutcome_AndNoPlaintext()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var root = await vault.Tokens.LookupAsync(new LookupTokenRequest(), vault.As());
        var before = (await Audit(vault).TailAsync(new TailAuditRequest { Limit = 10_000 }, vault.As())).Entries.Last().Seq;

        await vault.Kv.PutAsync(new PutSecretRequest { Path = "audited/db", Data = { ["password"] = "plaintext-in-audit-test" } }, vault.As());
        await vault.Kv.GetAsync(new GetSecretRequest { Path = "audited/db" }, vault.As());
        await vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = "none", Rules = { new PolicyRule { Path = "kv/elsewhere/*", Capabilities = { "read" } } } } }, vault.As());
        var weak = await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "none" } }, vault.As());
        await Rpc.FailsWith(StatusCode.PermissionDenied, () => vault.Kv.GetAsync(new GetSecretRequest { Path = "audited/db" }, vault.As(weak.Token)));
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => vault.Kv.GetAsync(new GetSecretRequest { Path = "audited/db" }, vault.As("vt_wrong")));

        var entries = (await Audit(vault).TailAsync(new TailAuditRequest { AfterSeq = before }, vault.As())).Entries.ToList();
        var expected = new (string Accessor, string Rpc, string Path, string Outcome, string Code)[]
        {
            // The tail that read "before" is recorded once it has answered.
            (root.Accessor, "vault.v1.AuditService/Tail", "sys/audit", "ok", ""),
            (root.Accessor, "vault.v1.KvService/Put", "kv/audited/db", "ok", ""),
            (root.Accessor, "vault.v1.KvService/Get", "kv/audited/db", "ok", ""),
            (root.Accessor, "vault.v1.PolicyService/Put", "sys/policy/none", "ok", ""),
            (root.Accessor, "vault.v1.TokenService/Create", "auth/token/create", "ok", ""),
            (weak.Info.Accessor, "vault.v1.KvService/Get", "kv/audited/db", "error", "PermissionDenied"),
            ("", "vault.v1.KvService/Get", "", "error", "Unauthenticated"),
        };
        Assert.Equal(expected, entries.Select(e => (e.Accessor, e.Rpc, e.Path, e.Outcome, e.ErrorCode)));
        Assert.Equal(Enumerable.Range(1, 7).Select(i => before + (ulong)i), entries.Select(e => e.Seq));

        DataDirectoryScan.AssertNoneAppear(AuditDir(vault), ["plaintext-in-audit-test", weak.Token, vault.RootToken, TestVault.Passphrase]);
    }

    [Fact]
    public async Task Hash_OfALeakedToken_FindsEveryRequestMadeWithIt_AndOnlyThose()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var leaked = await vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { "root" } }, vault.As());
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "leak/a", Data = { ["v"] = "x" } }, vault.As(leaked.Token));
        await vault.Kv.GetAsync(new GetSecretRequest { Path = "leak/a" }, vault.As(leaked.Token));
        await vault.Kv.GetAsync(new GetSecretRequest { Path = "leak/a" }, vault.As());
        await vault.Tokens.RevokeAsync(new RevokeTokenRequest { Accessor = leaked.Info.Accessor }, vault.As());
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => vault.Kv.GetAsync(new GetSecretRequest { Path = "leak/a" }, vault.As(leaked.Token)));

        var hmac = (await Audit(vault).HashAsync(new HashAuditRequest { Value = leaked.Token }, vault.As())).Hash;
        var entries = (await Audit(vault).TailAsync(new TailAuditRequest { CredentialHmac = hmac }, vault.As())).Entries;
        Assert.Equal(["ok", "ok", "error"], entries.Select(e => e.Outcome));
        Assert.Equal(["vault.v1.KvService/Put", "vault.v1.KvService/Get", "vault.v1.KvService/Get"], entries.Select(e => e.Rpc));
        DataDirectoryScan.AssertNoneAppear(AuditDir(vault), [leaked.Token]);
    }

    [Fact]
    public async Task Hash_GivesTheHmacOfAValue_NotTheValue()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var a = await Audit(vault).HashAsync(new HashAuditRequest { Value = "some-token" }, vault.As());
        var b = await Audit(vault).HashAsync(new HashAuditRequest { Value = "some-token" }, vault.As());
        var c = await Audit(vault).HashAsync(new HashAuditRequest { Value = "other-token" }, vault.As());
        Assert.Equal(a.Hash, b.Hash);
        Assert.NotEqual(a.Hash, c.Hash);
        Assert.Equal(64, a.Hash.Length);
        DataDirectoryScan.AssertNoneAppear(AuditDir(vault), ["some-token", "other-token"]);
    }

    [Theory]
    [MemberData(nameof(AuditTampering.Kinds), MemberType = typeof(AuditTampering))]
    public async Task Verify_PassesOnAnUntouchedLog_AndNamesTheFirstBadEntryAfterTampering(string kind)
    {
        await using var vault = await TestVault.StartInitializedAsync();
        for (var i = 0; i < 10; i++)
        {
            await vault.Kv.PutAsync(new PutSecretRequest { Path = $"chain/s{i}", Data = { ["v"] = "x" } }, vault.As());
        }
        var intact = await Audit(vault).VerifyAsync(new VerifyAuditRequest(), vault.As());
        Assert.True(intact.Ok, intact.Reason);
        Assert.True(intact.EntriesChecked >= 10);

        var file = AuditFile(vault);
        var lines = File.ReadAllLines(file).ToList();
        var expectedLine = AuditTampering.Apply(kind, lines);
        await File.WriteAllLinesAsync(file, lines);

        var verdict = await Audit(vault).VerifyAsync(new VerifyAuditRequest(), vault.As());
        Assert.False(verdict.Ok);
        Assert.NotEmpty(verdict.Reason);
        Assert.Equal((ulong)expectedLine, verdict.Line);
    }

    /// <summary>
    /// The log keeps its file open between groups: an entry must still land where the file's
    /// name points, after the end of what that file holds — not in a file moved away, nor at the
    /// old end of a file someone cut short.
    /// </summary>
    [Fact]
    public async Task AnEntryIsWrittenToTheFileTheNameNamesNow_AfterItsEnd_WhenTheFileWasMovedOrCut()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "kept/s", Data = { ["v"] = "x" } }, vault.As());
        var file = AuditFile(vault);
        var moved = file + ".moved";
        File.Move(file, moved);
        var movedLength = new FileInfo(moved).Length;

        await vault.Kv.GetAsync(new GetSecretRequest { Path = "kept/s" }, vault.As());

        Assert.Equal(movedLength, new FileInfo(moved).Length);
        var written = File.ReadAllLines(file);
        Assert.Single(written);
        Assert.Contains("\"path\":\"kv/kept/s\"", written[0], StringComparison.Ordinal);

        // Cut short in place (the same file): the next entry follows what is left, with no gap.
        using (var cut = new FileStream(file, FileMode.Open, FileAccess.Write))
        {
            cut.SetLength(0);
        }
        await vault.Kv.GetAsync(new GetSecretRequest { Path = "kept/s" }, vault.As());

        var bytes = await File.ReadAllBytesAsync(file);
        Assert.Equal((byte)'{', bytes[0]);
        Assert.Single(File.ReadAllLines(file));
    }

    [Fact]
    public async Task WhenTheAuditFileCannotBeWritten_RequestsFailClosed_AndRecoverOnceItCan()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "closed/s", Data = { ["v"] = "must-not-be-returned" } }, vault.As());
        using var events = await Telemetry.EventWatch.StartAsync(vault.Channel, vault.As(), "audit.");
        var file = AuditFile(vault);
        var aside = file + ".aside";
        // Root ignores file permissions; a directory where the file should be stops even root.
        File.Move(file, aside);
        Directory.CreateDirectory(file);

        var ex = await Rpc.FailsWith(StatusCode.Unavailable, () => vault.Kv.GetAsync(new GetSecretRequest { Path = "closed/s" }, vault.As()));
        Assert.DoesNotContain("must-not-be-returned", ex.Status.Detail, StringComparison.Ordinal);
        var status = await vault.System.StatusAsync(new StatusRequest());
        Assert.NotEmpty(status.AuditFailure);
        var health = new Health.HealthClient(vault.Channel);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, (await health.CheckAsync(new HealthCheckRequest())).Status);
        await Rpc.FailsWith(StatusCode.Unavailable, () => vault.Kv.PutAsync(new PutSecretRequest { Path = "closed/new", Data = { ["v"] = "x" } }, vault.As()));

        Directory.Delete(file);
        File.Move(aside, file);
        Assert.Equal("must-not-be-returned", (await vault.Kv.GetAsync(new GetSecretRequest { Path = "closed/s" }, vault.As())).Data["v"]);
        Assert.Empty((await vault.System.StatusAsync(new StatusRequest())).AuditFailure);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);
        await Rpc.FailsWith(StatusCode.NotFound, () => vault.Kv.GetMetadataAsync(new GetMetadataRequest { Path = "closed/new" }, vault.As()));
        Assert.True((await Audit(vault).VerifyAsync(new VerifyAuditRequest(), vault.As())).Ok);
        // A watcher of security events saw the failure, with its reason, and the recovery.
        var failed = await events.NextAsync();
        Assert.Equal("audit.failed", failed.Type);
        Assert.False(string.IsNullOrEmpty(failed.Attributes["reason"]));
        Assert.Equal("audit.recovered", (await events.NextAsync()).Type);
    }

    [Fact]
    public async Task AnUnfinishedLastEntryFromACrash_IsCutOff_AndTheChainContinues()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "torn/s", Data = { ["v"] = "x" } }, vault.As());
        await vault.RestartAsync(() =>
        {
            var file = AuditFile(vault);
            File.AppendAllText(file, "{\"seq\":999,\"time\":\"2026-");
            File.WriteAllText(Path.Combine(AuditDir(vault), "audit-notes.jsonl"), "not part of the chain\n");
        });
        await vault.UnsealAsync();
        await vault.Kv.GetAsync(new GetSecretRequest { Path = "torn/s" }, vault.As());
        var verdict = await Audit(vault).VerifyAsync(new VerifyAuditRequest(), vault.As());
        Assert.True(verdict.Ok, verdict.Reason);
        Assert.DoesNotContain("\"seq\":999", File.ReadAllText(AuditFile(vault)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnEntryWithAnAddedField_FailsVerification()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "added/s", Data = { ["v"] = "x" } }, vault.As());
        var file = AuditFile(vault);
        var lines = File.ReadAllLines(file);
        lines[0] = lines[0].Replace("{\"seq\"", "{\"note\":\"benign\",\"seq\"", StringComparison.Ordinal);
        File.WriteAllLines(file, lines);
        var verdict = await Audit(vault).VerifyAsync(new VerifyAuditRequest(), vault.As());
        Assert.False(verdict.Ok);
        Assert.Equal(1UL, verdict.Line);
    }

    [Fact]
    public async Task TheChainContinuesAcrossARestart()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        await vault.Kv.PutAsync(new PutSecretRequest { Path = "restart/s", Data = { ["v"] = "x" } }, vault.As());
        await vault.RestartAsync();
        await vault.UnsealAsync();
        await vault.Kv.GetAsync(new GetSecretRequest { Path = "restart/s" }, vault.As());
        var verdict = await Audit(vault).VerifyAsync(new VerifyAuditRequest(), vault.As());
        Assert.True(verdict.Ok, verdict.Reason);
    }

    [Fact]
    public async Task TheLogRollsOverBySize_AndTheChainSpansFiles()
    {
        await using var vault = await TestVault.StartInitializedAsync("--Vault:AuditMaxFileBytes=65536");
        for (var i = 0; i < 400; i++)
        {
            await vault.Kv.PutAsync(new PutSecretRequest { Path = $"roll/{i}/{new string('p', 100)}", Data = { ["v"] = "x" } }, vault.As());
        }
        Assert.True(Directory.GetFiles(AuditDir(vault), "audit-*.jsonl").Length >= 2);
        var verdict = await Audit(vault).VerifyAsync(new VerifyAuditRequest(), vault.As());
        Assert.True(verdict.Ok, verdict.Reason);
        Assert.True(verdict.EntriesChecked >= 400);
    }
}
