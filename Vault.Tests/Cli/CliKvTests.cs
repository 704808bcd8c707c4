using System.Text.Json;

namespace Vault.Tests.Cli;

public sealed class CliKvTests(CliVaultFixture fixture) : IClassFixture<CliVaultFixture>
{
    private readonly VaultCtl _ctl = fixture.Ctl();

    private static string NewPath() => $"cli/{Guid.NewGuid():N}";

    [Fact]
    public async Task KvPutThenGet_Json_ReturnsValue()
    {
        var path = NewPath();

        var put = (await _ctl.RunAsync("kv", "put", path, "user=alice", "password=s3cr3t=x", "--json")).Json();
        var get = (await _ctl.RunAsync("kv", "get", path, "--json")).Json();

        Assert.Equal(1UL, put.GetProperty("version").GetUInt64());
        Assert.Equal(path, get.GetProperty("path").GetString());
        Assert.Equal(1UL, get.GetProperty("version").GetUInt64());
        Assert.Equal("alice", get.GetProperty("data").GetProperty("user").GetString());
        Assert.Equal("s3cr3t=x", get.GetProperty("data").GetProperty("password").GetString());
    }

    [Fact]
    public async Task KvGet_Human_ShowsVersionAndKeyValueTable()
    {
        var path = NewPath();
        (await _ctl.RunAsync("kv", "put", path, "user=alice")).Ok();

        var output = (await _ctl.RunAsync("kv", "get", path)).Ok();

        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.StartsWith("Version", StringComparison.Ordinal) && l.EndsWith(" 1", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("KEY", StringComparison.Ordinal) && l.Contains("VALUE", StringComparison.Ordinal));
        Assert.Contains("user  alice", lines);
    }

    [Fact]
    public async Task KvGet_Field_PrintsOnlyThatValue()
    {
        var path = NewPath();
        (await _ctl.RunAsync("kv", "put", path, "user=alice", "password=hunter2")).Ok();

        var result = await _ctl.RunAsync("kv", "get", path, "--field", "password");

        Assert.Equal("hunter2\n", result.Ok());
    }

    [Fact]
    public async Task KvGet_MissingField_IsOneLineError()
    {
        var path = NewPath();
        (await _ctl.RunAsync("kv", "put", path, "user=alice")).Ok();

        var result = await _ctl.RunAsync("kv", "get", path, "--field", "nope");

        result.OneLineError(1, "no key 'nope'");
    }

    [Fact]
    public async Task KvGet_Version_ReadsOlderVersion()
    {
        var path = NewPath();
        (await _ctl.RunAsync("kv", "put", path, "n=1")).Ok();
        (await _ctl.RunAsync("kv", "put", path, "n=2")).Ok();

        var old = (await _ctl.RunAsync("kv", "get", path, "--version", "1", "--json")).Json();
        var latest = (await _ctl.RunAsync("kv", "get", path, "--json")).Json();

        Assert.Equal("1", old.GetProperty("data").GetProperty("n").GetString());
        Assert.Equal(2UL, latest.GetProperty("version").GetUInt64());
        Assert.Equal("2", latest.GetProperty("data").GetProperty("n").GetString());
    }

    [Fact]
    public async Task KvPut_ValueFromFile_StoresFileContents()
    {
        var path = NewPath();
        var file = Path.GetTempFileName();
        await File.WriteAllTextAsync(file, "-----BEGIN KEY-----\nabc\n");
        try
        {
            (await _ctl.RunAsync("kv", "put", path, $"key=@{file}")).Ok();

            var get = (await _ctl.RunAsync("kv", "get", path, "--json")).Json();

            Assert.Equal("-----BEGIN KEY-----\nabc\n", get.GetProperty("data").GetProperty("key").GetString());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task KvPut_WithStaleCas_IsAbortedServerError()
    {
        var path = NewPath();
        (await _ctl.RunAsync("kv", "put", path, "n=1", "--cas", "0")).Ok();

        var stale = await _ctl.RunAsync("kv", "put", path, "n=2", "--cas", "0");
        var fresh = await _ctl.RunAsync("kv", "put", path, "n=2", "--cas", "1", "--json");

        stale.OneLineError(2, "vaultctl: Aborted: ");
        Assert.Equal(2UL, fresh.Json().GetProperty("version").GetUInt64());
    }

    [Fact]
    public async Task KvPut_WithoutEquals_IsOneLineUsageErrorWithoutEchoingIt()
    {
        var result = await _ctl.RunAsync("kv", "put", NewPath(), "a=1", "hunter2");

        result.OneLineError(1, "data argument 2 is not KEY=VALUE");
        Assert.DoesNotContain("hunter2", result.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KvPut_BadPath_IsInvalidArgumentNamingTheProblem()
    {
        var result = await _ctl.RunAsync("kv", "put", "cli//bad", "a=b");

        result.OneLineError(2, "vaultctl: InvalidArgument: ");
    }

    [Fact]
    public async Task KvGet_MissingSecret_IsNotFound()
    {
        var result = await _ctl.RunAsync("kv", "get", NewPath());

        result.OneLineError(2, "vaultctl: NotFound: ");
    }

    [Fact]
    public async Task KvList_ShowsKeysAndFoldersUnderPrefix()
    {
        var prefix = NewPath();
        (await _ctl.RunAsync("kv", "put", $"{prefix}/a", "x=1")).Ok();
        (await _ctl.RunAsync("kv", "put", $"{prefix}/sub/b", "x=1")).Ok();

        var json = (await _ctl.RunAsync("kv", "list", prefix, "--json")).Json();
        var human = (await _ctl.RunAsync("kv", "list", prefix)).Ok();

        Assert.Equal(["a", "sub/"], json.GetProperty("keys").EnumerateArray().Select(k => k.GetString()).Order(StringComparer.Ordinal));
        Assert.Equal(["a", "sub/"], human.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task KvDeleteThenUndelete_RestoresLatestVersion()
    {
        var path = NewPath();
        (await _ctl.RunAsync("kv", "put", path, "n=1")).Ok();
        (await _ctl.RunAsync("kv", "put", path, "n=2")).Ok();

        var deleted = (await _ctl.RunAsync("kv", "delete", path, "--json")).Json();
        var whileDeleted = await _ctl.RunAsync("kv", "get", path, "--version", "2");
        var undeleted = (await _ctl.RunAsync("kv", "undelete", path, "--versions", "2", "--json")).Json();
        var after = (await _ctl.RunAsync("kv", "get", path, "--json")).Json();

        Assert.Equal([2UL], deleted.GetProperty("versions").EnumerateArray().Select(v => v.GetUInt64()));
        whileDeleted.OneLineError(2, "vaultctl: NotFound: ");
        Assert.Equal([2UL], undeleted.GetProperty("versions").EnumerateArray().Select(v => v.GetUInt64()));
        Assert.Equal("2", after.GetProperty("data").GetProperty("n").GetString());
    }

    [Fact]
    public async Task KvDestroyAndDeleteVersions_ShowInHistory()
    {
        var path = NewPath();
        for (var i = 1; i <= 3; i++)
        {
            (await _ctl.RunAsync("kv", "put", path, $"n={i}")).Ok();
        }

        (await _ctl.RunAsync("kv", "destroy", path, "--versions", "1")).Ok();
        var deleted = (await _ctl.RunAsync("kv", "delete", path, "--versions", "2")).Ok();
        var history = (await _ctl.RunAsync("kv", "history", path, "--json")).Json();
        var table = (await _ctl.RunAsync("kv", "history", path)).Ok();
        var destroyedRead = await _ctl.RunAsync("kv", "get", path, "--version", "1");

        Assert.Equal($"Deleted version 2 of {path}\n", deleted);
        Assert.Equal(3UL, history.GetProperty("current_version").GetUInt64());
        var versions = history.GetProperty("versions").EnumerateArray().ToDictionary(v => v.GetProperty("version").GetUInt64());
        Assert.True(versions[1].GetProperty("destroyed").GetBoolean());
        Assert.True(versions[2].TryGetProperty("deleted_at", out _));
        Assert.False(versions[3].GetProperty("destroyed").GetBoolean());
        Assert.False(versions[3].TryGetProperty("deleted_at", out _));
        var rows = table.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("VERSION", rows[0], StringComparison.Ordinal);
        Assert.Equal(2 + 3, rows.Length);
        destroyedRead.OneLineError(2, "vaultctl: NotFound: ");
    }

    [Fact]
    public async Task KvMetadata_SetsMaxVersionsAndCasRequired()
    {
        var path = NewPath();
        (await _ctl.RunAsync("kv", "put", path, "n=1")).Ok();

        var updated = (await _ctl.RunAsync("kv", "metadata", "put", path, "--max-versions", "5", "--cas-required", "true", "--custom", "owner=team-a", "--json")).Json();
        var withoutCas = await _ctl.RunAsync("kv", "put", path, "n=2");
        var shown = (await _ctl.RunAsync("kv", "metadata", "get", path)).Ok();

        Assert.Equal(5U, updated.GetProperty("max_versions").GetUInt32());
        Assert.True(updated.GetProperty("cas_required").GetBoolean());
        Assert.Equal("team-a", updated.GetProperty("custom_metadata").GetProperty("owner").GetString());
        withoutCas.OneLineError(2, "check-and-set");
        Assert.Matches(@"(?m)^CAS Required +true$", shown);
    }

    [Fact]
    public async Task KvMetadataPut_WithNothingToChange_IsOneLineUsageError()
    {
        var result = await _ctl.RunAsync("kv", "metadata", "put", NewPath());

        result.OneLineError(1, "nothing to change");
    }

    [Fact]
    public async Task KvMetadataDelete_RemovesEveryVersion()
    {
        var path = NewPath();
        (await _ctl.RunAsync("kv", "put", path, "n=1")).Ok();
        (await _ctl.RunAsync("kv", "put", path, "n=2")).Ok();

        var deleted = (await _ctl.RunAsync("kv", "metadata", "delete", path, "--json")).Json();
        var history = await _ctl.RunAsync("kv", "history", path);
        var get = await _ctl.RunAsync("kv", "get", path);

        Assert.True(deleted.GetProperty("deleted").GetBoolean());
        history.OneLineError(2, "vaultctl: NotFound: ");
        get.OneLineError(2, "vaultctl: NotFound: ");
    }

    [Fact]
    public async Task KvPut_SecretValueNeverAppearsInPutOutput()
    {
        var path = NewPath();

        var result = await _ctl.RunAsync("kv", "put", path, "password=do-not-echo-me");

        Assert.DoesNotContain("do-not-echo-me", result.Ok(), StringComparison.Ordinal);
        Assert.Equal("", result.StdErr);
        _ = JsonDocument.Parse((await _ctl.RunAsync("kv", "put", path, "password=do-not-echo-me", "--json")).Ok());
    }
}
