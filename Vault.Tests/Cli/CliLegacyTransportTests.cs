using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Vault.Server.Rotation;

namespace Vault.Tests.Cli;

/// <summary>
/// Targets and verified TLS by default: a target registered now without a TLS option is verified
/// (<c>verify-full</c>); one stored before that default (its record has neither the option nor the
/// mark a registration now leaves) keeps working with the mode it had, is flagged in <c>target
/// show</c> and <c>target list</c>, and moves to verified TLS when registered again.
/// </summary>
[Collection("postgres")]
public sealed class CliLegacyTransportTests(CliVaultFixture fixture, PostgresServer postgres) : IClassFixture<CliVaultFixture>
{
    private readonly VaultCtl _ctl = fixture.Ctl();

    private string[] AddArgs(string name, string role, string admin) =>
        ["target", "add", name, "--kind", "postgres", "--host", postgres.Host, "--port", postgres.Port.ToString(CultureInfo.InvariantCulture),
         "--database", postgres.Database, "--account", role, "--admin-secret", admin, "--current-password-stdin"];

    [Fact]
    public async Task NewTarget_WithoutATlsOption_IsVerifiedFull()
    {
        var name = CliVaultFixture.Unique("tls-default");
        var password = "Today-" + Guid.NewGuid().ToString("N");
        var role = await postgres.CreateLoginRoleAsync(password, "dflt");
        var admin = $"infra/{name}";
        (await _ctl.RunAsync("kv", "put", admin, $"username={postgres.SuperUser}", $"password={postgres.SuperPassword}")).Ok();
        (await _ctl.RunWithInputAsync(password + "\n", AddArgs(name, role, admin))).Ok();

        var show = (await _ctl.RunAsync("target", "show", name)).Ok();
        var rotated = (await _ctl.RunAsync("target", "rotate", name)).Ok();

        // Verified against the CA the vault was given for its targets (--Vault:Rotation:TargetCaFile).
        Assert.Matches(@"(?m)^TLS +verify-full$", show);
        Assert.Matches(@"(?m)^Outcome +succeeded$", rotated);
        Assert.Matches($@"connection authorized: user={role} database={postgres.Database} .*SSL enabled \(protocol=TLSv1\.", postgres.LogText());
    }

    [Fact]
    public async Task TargetStoredBeforeTheDefault_KeepsItsMode_IsFlagged_AndMovesToVerifiedWhenRegisteredAgain()
    {
        var name = CliVaultFixture.Unique("tls-legacy");
        var password = "Today-" + Guid.NewGuid().ToString("N");
        var role = await postgres.CreateLoginRoleAsync(password, "lgcy");
        var admin = $"infra/{name}";
        (await _ctl.RunAsync("kv", "put", admin, $"username={postgres.SuperUser}", $"password={postgres.SuperPassword}")).Ok();
        (await _ctl.RunWithInputAsync(password + "\n", AddArgs(name, role, admin))).Ok();
        await StoreAsBeforeTheDefaultAsync(name);

        var legacyShow = (await _ctl.RunAsync("target", "show", name)).Ok();
        var legacyList = (await _ctl.RunAsync("target", "list")).Ok();
        var rotated = (await _ctl.RunAsync("target", "rotate", name)).Ok();
        var current = (await _ctl.RunAsync("target", "credential", name, "--field", "password")).Ok().Trim();
        (await _ctl.RunWithInputAsync(current + "\n", AddArgs(name, role, admin))).Ok();
        var movedShow = (await _ctl.RunAsync("target", "show", name)).Ok();

        Assert.Matches($@"(?m)^TLS +prefer; WARNING: {TargetTrust.LegacyNote.Replace("(", @"\(", StringComparison.Ordinal).Replace(")", @"\)", StringComparison.Ordinal)}: TLS only if the server offers it, unverified", legacyShow);
        Assert.Matches($@"(?m)^{name} .*tls unverified \(prefer\)$", legacyList);
        Assert.Matches(@"(?m)^Outcome +succeeded$", rotated);
        Assert.True(await postgres.CanLoginAsync(role, current));
        Assert.Matches(@"(?m)^TLS +verify-full$", movedShow);
    }

    /// <summary>Rewrites the record as a vault from before the default stored it: no TLS option, no mark.</summary>
    private async Task StoreAsBeforeTheDefaultAsync(string name)
    {
        var repository = fixture.Vault.Services.GetRequiredService<TargetRepository>();
        await repository.WriteAsync(tx =>
        {
            var record = repository.Load(tx, name)!;
            Assert.False(record.Options.ContainsKey("ssl_mode"));
            record.VerifiedTlsByDefault = false;
            repository.Save(tx, name, record);
            return true;
        }, CancellationToken.None);
    }
}
