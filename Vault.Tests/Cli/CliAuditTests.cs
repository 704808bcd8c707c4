using System.Text;
using System.Text.Json;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Cli;

public sealed class CliAuditTests(CliVaultFixture fixture) : IClassFixture<CliVaultFixture>
{
    private static readonly TimeSpan FollowTimeout = TimeSpan.FromSeconds(10);
    private readonly VaultCtl _ctl = fixture.Ctl();

    private static string NewPath() => $"cli-audit/{Guid.NewGuid():N}";

    /// <summary>Parses JSON-lines output: every non-empty line must be one JSON object.</summary>
    private static List<JsonElement> JsonLines(string stdout) =>
        stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line =>
        {
            try
            {
                using var document = JsonDocument.Parse(line);
                Assert.Equal(JsonValueKind.Object, document.RootElement.ValueKind);
                return document.RootElement.Clone();
            }
            catch (JsonException ex)
            {
                throw new Xunit.Sdk.XunitException($"not a JSON line ({ex.Message}): {line}");
            }
        }).ToList();

    private static string? Text(JsonElement entry, string name) =>
        entry.TryGetProperty(name, out var value) ? value.GetString() : null;

    [Fact]
    public async Task AcknowledgeGap_WhenNothingIsMissing_IsAOneLineErrorThatSaysSo()
    {
        (await _ctl.RunAsync("audit", "acknowledge-gap", "--last-missing", "7")).OneLineError(2, "not missing any entries");
    }

    [Fact]
    public async Task Tail_Json_ShowsTheKvPutTheTestMade()
    {
        var path = NewPath();
        (await _ctl.RunAsync("kv", "put", path, "user=alice")).Ok();

        var result = await _ctl.RunAsync("audit", "tail", "--path-prefix", $"kv/{path}", "--json");

        var entry = Assert.Single(JsonLines(result.Ok()));
        Assert.Equal("vault.v1.KvService/Put", Text(entry, "rpc"));
        Assert.Equal($"kv/{path}", Text(entry, "path"));
        Assert.Equal("ok", Text(entry, "outcome"));
        Assert.Null(Text(entry, "error_code"));
        Assert.StartsWith("va_", Text(entry, "accessor"), StringComparison.Ordinal);
        Assert.True(entry.GetProperty("seq").GetUInt64() > 0);
        Assert.Equal(64, Text(entry, "hash")!.Length);
        Assert.DoesNotContain("alice", result.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tail_PathPrefix_ShowsOnlyMatchingEntriesIncludingErrors()
    {
        var mine = NewPath();
        var other = NewPath();
        (await _ctl.RunAsync("kv", "put", $"{mine}/a", "n=1")).Ok();
        (await _ctl.RunAsync("kv", "put", $"{other}/a", "n=1")).Ok();
        (await _ctl.RunAsync("kv", "get", $"{mine}/missing")).OneLineError(2, "NotFound");

        var entries = JsonLines((await _ctl.RunAsync("audit", "tail", "--path-prefix", $"kv/{mine}/", "--json")).Ok());

        Assert.Collection(entries,
            put =>
            {
                Assert.Equal("vault.v1.KvService/Put", Text(put, "rpc"));
                Assert.Equal($"kv/{mine}/a", Text(put, "path"));
                Assert.Equal("ok", Text(put, "outcome"));
            },
            get =>
            {
                Assert.Equal("vault.v1.KvService/Get", Text(get, "rpc"));
                Assert.Equal($"kv/{mine}/missing", Text(get, "path"));
                Assert.Equal("error", Text(get, "outcome"));
                Assert.Equal("NotFound", Text(get, "error_code"));
            });
        Assert.True(entries[0].GetProperty("seq").GetUInt64() < entries[1].GetProperty("seq").GetUInt64(), "oldest first");
    }

    [Fact]
    public async Task Tail_RpcAndLimit_ShowOnlyTheNewestMatches()
    {
        var path = NewPath();
        (await _ctl.RunAsync("kv", "put", path, "n=1")).Ok();
        (await _ctl.RunAsync("kv", "put", path, "n=2")).Ok();
        (await _ctl.RunAsync("kv", "get", path)).Ok();

        var puts = JsonLines((await _ctl.RunAsync("audit", "tail", "--path-prefix", $"kv/{path}", "--rpc", "kvservice/put", "--json")).Ok());
        var newest = JsonLines((await _ctl.RunAsync("audit", "tail", "--path-prefix", $"kv/{path}", "--limit", "1", "--json")).Ok());

        Assert.Equal(2, puts.Count);
        Assert.All(puts, e => Assert.Equal("vault.v1.KvService/Put", Text(e, "rpc")));
        Assert.Equal("vault.v1.KvService/Get", Text(Assert.Single(newest), "rpc"));
    }

    [Fact]
    public async Task Tail_Since_FiltersByTime()
    {
        var path = NewPath();
        (await _ctl.RunAsync("kv", "put", path, "n=1")).Ok();
        var future = DateTimeOffset.UtcNow.AddHours(1).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);

        var recent = await _ctl.RunAsync("audit", "tail", "--path-prefix", $"kv/{path}", "--since", "1h", "--json");
        var none = await _ctl.RunAsync("audit", "tail", "--path-prefix", $"kv/{path}", "--since", future, "--json");
        var bad = await _ctl.RunAsync("audit", "tail", "--since", "yesterday");

        Assert.Single(JsonLines(recent.Ok()));
        Assert.Equal("", none.Ok());
        bad.OneLineError(1, "--since: 'yesterday' is neither a time");
    }

    [Fact]
    public async Task Tail_Human_ShowsTableOfEntries()
    {
        var path = NewPath();
        (await _ctl.RunAsync("kv", "put", path, "n=1")).Ok();

        var lines = (await _ctl.RunAsync("audit", "tail", "--path-prefix", $"kv/{path}")).Ok().Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal(3, lines.Length);
        Assert.Matches(@"^SEQ\s+TIME\s+ACCESSOR\s+ENTITY\s+RPC\s+PATH\s+OUTCOME\s+ERROR$", lines[0]);
        Assert.Matches($@"^\d+\s+\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+va_\S+\s+-\s+KvService/Put\s+kv/{path}\s+ok\s+-$", lines[2]);
    }

    [Fact]
    public async Task Tail_WithoutAuditReadPermission_IsPermissionDenied()
    {
        var policy = CliVaultFixture.Unique("kv-only");
        var file = Path.GetTempFileName();
        await File.WriteAllTextAsync(file, """{"rules":[{"path":"kv/*","capabilities":["read"]}]}""");
        try
        {
            (await _ctl.RunAsync("policy", "write", policy, file)).Ok();
            var token = (await _ctl.RunAsync("token", "create", "--policy", policy, "--json")).Json().GetProperty("token").GetString();

            var result = await fixture.Ctl(token).RunAsync("audit", "tail");

            result.OneLineError(2, "vaultctl: PermissionDenied: ");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Verify_UntouchedLog_ExitsZeroWithEntryCount()
    {
        (await _ctl.RunAsync("kv", "put", NewPath(), "n=1")).Ok();

        var human = await _ctl.RunAsync("audit", "verify");
        var json = (await _ctl.RunAsync("audit", "verify", "--json")).Json();

        Assert.Matches(@"^audit log intact: [1-9]\d* entries\n$", human.Ok());
        Assert.True(json.GetProperty("ok").GetBoolean());
        Assert.True(json.GetProperty("entries_checked").GetUInt64() > 0);
        Assert.False(json.TryGetProperty("file", out _));
    }

    [Fact]
    public async Task Verify_AfterAByteOfTheFileIsEdited_Exits4NamingFileAndLine()
    {
        // Its own vault: the edit breaks the chain for every later verify.
        await using var vault = await TestVault.StartInitializedAsync();
        var ctl = new VaultCtl(vault.Address, vault.RootToken);
        var path = NewPath();
        (await ctl.RunAsync("kv", "put", path, "n=1")).Ok();
        (await ctl.RunAsync("kv", "put", NewPath(), "n=1")).Ok();
        (await ctl.RunAsync("audit", "verify")).Ok();
        var file = Directory.GetFiles(Path.Combine(vault.DataDir, "audit"), "audit-*.jsonl").Order(StringComparer.Ordinal).Last();
        var lines = (await File.ReadAllTextAsync(file)).Split('\n');
        var lineIndex = Array.FindIndex(lines, l => l.Contains($"\"kv/{path}\"", StringComparison.Ordinal));
        Assert.True(lineIndex >= 0, $"no audit line for kv/{path} in {file}");
        // One byte of the path: the line stays valid JSON, so only the HMAC can tell.
        var bytes = await File.ReadAllBytesAsync(file);
        var offset = Encoding.UTF8.GetByteCount(string.Join('\n', lines[..lineIndex]) + (lineIndex > 0 ? "\n" : ""))
            + Encoding.UTF8.GetByteCount(lines[lineIndex][..lines[lineIndex].IndexOf($"\"kv/{path}\"", StringComparison.Ordinal)]) + 1;
        Assert.Equal((byte)'k', bytes[offset]);
        bytes[offset] = (byte)'K';
        await File.WriteAllBytesAsync(file, bytes);

        var human = await ctl.RunAsync("audit", "verify");
        var json = await ctl.RunAsync("audit", "verify", "--json");

        var name = Path.GetFileName(file);
        var line = human.OneLineError(4, $"{name} line {lineIndex + 1}: ");
        Assert.Contains("edited or forged", line, StringComparison.Ordinal);
        Assert.Equal(4, json.ExitCode);
        using var document = JsonDocument.Parse(json.StdOut);
        Assert.False(document.RootElement.GetProperty("ok").GetBoolean());
        Assert.Equal(name, document.RootElement.GetProperty("file").GetString());
        Assert.Equal((ulong)lineIndex + 1, document.RootElement.GetProperty("line").GetUInt64());
    }

    [Theory]
    [InlineData("delete")]
    [InlineData("swap")]
    [InlineData("truncate")]
    [InlineData("forge")]
    public async Task Verify_AfterEachKindOfTampering_Exits4NamingTheFirstBadLine(string kind)
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var ctl = new VaultCtl(vault.Address, vault.RootToken);
        // Entries to tamper with, made over gRPC: what is under test is verify, not eight more vaultctl processes.
        for (var i = 0; i < 8; i++)
        {
            await vault.Kv.PutAsync(new Vault.Protocol.V1.PutSecretRequest { Path = NewPath(), Data = { ["n"] = "1" } }, vault.As());
        }
        var file = Directory.GetFiles(Path.Combine(vault.DataDir, "audit"), "audit-*.jsonl").Order(StringComparer.Ordinal).Last();
        var lines = (await File.ReadAllLinesAsync(file)).ToList();
        var firstBadLine = AuditTampering.Apply(kind, lines);
        await File.WriteAllLinesAsync(file, lines);

        var json = await ctl.RunAsync("audit", "verify", "--json");
        Assert.Equal(4, json.ExitCode);
        using var document = JsonDocument.Parse(json.StdOut);
        Assert.False(document.RootElement.GetProperty("ok").GetBoolean());
        Assert.Equal((ulong)firstBadLine, document.RootElement.GetProperty("line").GetUInt64());
        Assert.NotEmpty(document.RootElement.GetProperty("reason").GetString()!);
    }

    [Fact]
    public async Task Archive_KeepFiles_PrintsTheFilesMovedAndWhereTheKeptChainBegins()
    {
        // Its own vault, with small files: archiving changes where every later verify starts.
        await using var vault = await TestVault.StartInitializedAsync("--Vault:AuditMaxFileBytes=65536");
        await AuditDirectory.FillAsync(vault, files: 3);
        var ctl = new VaultCtl(vault.Address, vault.RootToken);
        var files = AuditDirectory.Files(vault.DataDir).Select(f => Path.GetFileName(f)!).ToList();
        var older = files.SkipLast(2).ToList();

        var human = await ctl.RunAsync("audit", "archive", "--keep-files", "2");
        var json = (await ctl.RunAsync("audit", "archive", "--keep-files", "2", "--json")).Json();

        Assert.Matches($@"^archived {older.Count} files to audit/archive/ \({string.Join(", ", older)}\); the kept chain begins at entry [1-9]\d* in {files[^2]}\n$", human.Ok());
        Assert.Empty(json.GetProperty("archived_files").EnumerateArray());
        Assert.Equal(files[^2], json.GetProperty("start_file").GetString());
        Assert.True(json.GetProperty("start_seq").GetUInt64() > 1);
        Assert.Equal(older, Directory.GetFiles(Path.Combine(vault.DataDir, "audit", "archive")).Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal).ToList());
        Assert.Matches(@"^audit log intact: [1-9]\d* entries\n$", (await ctl.RunAsync("audit", "verify")).Ok());
    }

    [Fact]
    public async Task Archive_WithNothingOlderThanTheKeptChain_SaysSo()
    {
        var result = await _ctl.RunAsync("audit", "archive", "--before-file", "audit-000001.jsonl");

        Assert.Equal("nothing to archive; the kept chain begins at entry 1 in audit-000001.jsonl\n", result.Ok());
    }

    [Theory]
    [InlineData("give --keep-files N or --before-file FILE")]
    [InlineData("give --keep-files N or --before-file FILE", "--keep-files", "1", "--before-file", "audit-000001.jsonl")]
    [InlineData("--keep-files: must be at least 1", "--keep-files", "0")]
    public async Task Archive_WithoutExactlyOneChoice_IsAOneLineUsageError(string error, params string[] options)
    {
        (await _ctl.RunAsync(["audit", "archive", .. options])).OneLineError(1, error);
    }

    [Fact]
    public async Task Archive_WithoutTheCapability_IsPermissionDenied()
    {
        var policy = CliVaultFixture.Unique("auditor");
        var file = Path.GetTempFileName();
        await File.WriteAllTextAsync(file, """{"rules":[{"path":"sys/audit","capabilities":["read"]}]}""");
        try
        {
            (await _ctl.RunAsync("policy", "write", policy, file)).Ok();
            var token = (await _ctl.RunAsync("token", "create", "--policy", policy, "--json")).Json().GetProperty("token").GetString();

            (await fixture.Ctl(token).RunAsync("audit", "archive", "--keep-files", "1")).OneLineError(2, "PermissionDenied: ");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Hash_FromStdin_EqualsServerHashAndNeverPrintsTheValue()
    {
        var value = $"s3cr3t-{Guid.NewGuid():N}";
        var audit = new AuditService.AuditServiceClient(fixture.Vault.Channel);
        var expected = (await audit.HashAsync(new HashAuditRequest { Value = value }, fixture.Vault.As())).Hash;

        var piped = await _ctl.RunWithInputAsync(value + "\n", "audit", "hash");
        var json = await _ctl.RunWithInputAsync(value, "audit", "hash", "--json");

        Assert.Equal(expected + "\n", piped.Ok());
        Assert.Equal(expected, json.Json().GetProperty("hash").GetString());
        foreach (var run in new[] { piped, json })
        {
            Assert.DoesNotContain(value, run.StdOut, StringComparison.Ordinal);
            Assert.DoesNotContain(value, run.StdErr, StringComparison.Ordinal);
        }
        DataDirectoryScan.AssertNoneAppear(Path.Combine(fixture.Vault.DataDir, "audit"), [value]);
    }

    [Fact]
    public async Task Hash_FromValueFile_MatchesStdin()
    {
        var value = $"s3cr3t-{Guid.NewGuid():N}";
        var file = Path.GetTempFileName();
        await File.WriteAllTextAsync(file, value + "\n");
        try
        {
            var fromFile = await _ctl.RunAsync("audit", "hash", "--value-file", file);
            var fromStdin = await _ctl.RunWithInputAsync(value, "audit", "hash");

            Assert.Equal(fromStdin.Ok(), fromFile.Ok());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Hash_EmptyInput_IsOneLineUsageError()
    {
        var result = await _ctl.RunWithInputAsync("", "audit", "hash");

        result.OneLineError(1, "no value given");
    }

    [Fact]
    public async Task TailFollow_PrintsAnEntryMadeAfterItStarted_AndStopsCleanlyOnInterrupt()
    {
        var path = NewPath();
        var first = (await _ctl.RunAsync("kv", "put", path, "n=1", "--json")).Json();
        Assert.Equal(1UL, first.GetProperty("version").GetUInt64());
        await using var follow = _ctl.Start("audit", "tail", "--follow", "--path-prefix", $"kv/{path}", "--json");
        // The first put is in the initial tail: once it is printed, the follow loop is running.
        var before = JsonLines(await follow.WaitForLineAsync(l => l.Contains($"\"kv/{path}\"", StringComparison.Ordinal), FollowTimeout))[0];

        (await _ctl.RunAsync("kv", "get", path)).Ok();
        var after = JsonLines(await follow.WaitForLineAsync(l => l.Contains("KvService/Get", StringComparison.Ordinal), FollowTimeout))[0];
        var stopped = await follow.InterruptAsync(FollowTimeout);

        Assert.Equal($"kv/{path}", Text(after, "path"));
        Assert.True(after.GetProperty("seq").GetUInt64() > before.GetProperty("seq").GetUInt64());
        Assert.True(stopped.ExitCode == 0, $"exit {stopped.ExitCode}; stderr: {stopped.StdErr}");
        Assert.Equal("", stopped.StdErr);
        Assert.Equal(2, JsonLines(stopped.StdOut).Count);
    }
}
