using Microsoft.Extensions.Logging;
using Vault.Rotators;
using Vault.Rotators.MySql;
using Vault.Tests.Security;
using static Vault.Tests.Rotators.RotatorTestKit;

namespace Vault.Tests.Rotators;

/// <summary>MariaDB settings that would disturb other tests (global SQL mode, a password-validation plugin) get a server of their own.</summary>
public sealed class MySqlPrivateServerTests
{
    [Fact]
    public async Task OddUserNames_UnderAnsiQuotesAndNoBackslashEscapes_AreQuotedForTheSessionMode()
    {
        await using var server = await MariaDbServer.StartAsync();
        await server.ExecuteAsync("SET GLOBAL sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'");
        var rotator = new MySqlRotator();
        var target = Target(server.Host, server.Port);
        var admin = new Credential(server.SuperUser, server.SuperPassword);

        // Under NO_BACKSLASH_ESCAPES a backslash is literal; escaping it as the default mode
        // requires would name a different user.
        var user = "o'b\\x\"y";
        await server.ExecuteAsync($"CREATE USER {new MySqlQuoting(noBackslashEscapes: true).Literal(user)}@'%' IDENTIFIED BY 'initial-pw-1'");
        Assert.True(await server.CanLoginAsync(user, "initial-pw-1"));
        var fresh = NewPassword();

        await rotator.SetPasswordAsync(target, admin, user, fresh, CancellationToken.None);

        Assert.True(await server.CanLoginAsync(user, fresh));
        Assert.False(await server.CanLoginAsync(user, "initial-pw-1"));
        Assert.Equal(LoginOutcome.Accepted, (await rotator.VerifyLoginAsync(target, new Credential(user, fresh), CancellationToken.None)).Outcome);

        // Ephemeral users with a backslash in the name: created, granted, revoked under the same mode.
        var name = $"eph\\{Guid.NewGuid():N}"[..20];
        var password = NewPassword();
        await rotator.CreateEphemeralUserAsync(target, admin, new EphemeralUser(name, password, DateTimeOffset.UtcNow.AddHours(1), ["GRANT USAGE ON *.* TO {{name}}"]), CancellationToken.None);
        Assert.True(await server.CanLoginAsync(name, password));
        await rotator.RevokeEphemeralUserAsync(target, admin, name, CancellationToken.None);
        // Not server.CanLoginAsync: for an account that no longer exists MariaDB sometimes answers
        // 1698 rather than 1045, which the fixture reports as an error; the rotator counts both as refused.
        Assert.Equal(LoginOutcome.Refused, (await rotator.VerifyLoginAsync(target, new Credential(name, password), CancellationToken.None)).Outcome);
    }

    [Fact]
    public async Task PasswordValidationPlugin_RefusesPreHashedPasswords_SoTheRotatorFailsClosed_OrFallsBackToPlaintextWhenTold_AndSaysSo()
    {
        await using var server = await MariaDbServer.StartAsync();
        var old = NewPassword();
        var user = await server.CreateLoginUserAsync(old, "mypolicy");
        await server.ExecuteAsync("INSTALL SONAME 'simple_password_check'");
        await server.ExecuteAsync("SET GLOBAL simple_password_check_minimal_length = 40");
        // Generated passwords need not contain '-' or '_'; only the length is under test.
        await server.ExecuteAsync("SET GLOBAL simple_password_check_other_characters = 0");
        var logs = new CapturingLoggerProvider();
        using var factory = new LoggerFactory([logs]);
        var rotator = new MySqlRotator(factory.CreateLogger<MySqlRotator>());
        var closed = Target(server.Host, server.Port);
        var target = closed with { Options = new Dictionary<string, string> { ["plaintext_fallback"] = "true" } };
        var admin = new Credential(server.SuperUser, server.SuperPassword);

        // 32 characters: the plugin wants 40.
        var tooShort = NewPassword();
        var rejected = await FailsWith(RotatorFailure.PasswordRejected,
            () => rotator.SetPasswordAsync(target, admin, user, tooShort, CancellationToken.None), tooShort, NativePasswordHash.Compute(tooShort));
        Assert.Contains("simple_password_check", rejected.Message, StringComparison.Ordinal);
        Assert.True(await server.CanLoginAsync(user, old));
        // The plugin only sees plaintext, so the rotator had to send it, and MariaDB logs a
        // statement before running it: the rejected password is in the general log too.
        Assert.Single(logs.Lines, line => line.Contains("[7001]", StringComparison.Ordinal));
        Assert.Contains(tooShort, server.GeneralLogText(), StringComparison.Ordinal);

        // Long enough: accepted, but only in plaintext, which the general log then holds.
        var longEnough = NewPassword() + NewPassword();
        await rotator.SetPasswordAsync(target, admin, user, longEnough, CancellationToken.None);
        Assert.True(await server.CanLoginAsync(user, longEnough));
        var warnings = logs.Lines.Where(line => line.Contains("[7001]", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, warnings.Count);
        Assert.All(warnings, warning => Assert.Contains(user, warning, StringComparison.Ordinal));
        AssertNoSecret(string.Join('\n', logs.Lines), tooShort, longEnough);
        Assert.Contains(longEnough, server.GeneralLogText(), StringComparison.Ordinal);

        // By default (fallback off) nothing is sent in plaintext and the failure says why.
        var refusedPlaintext = NewPassword() + NewPassword();
        var ex = await FailsWith(RotatorFailure.Other,
            () => rotator.SetPasswordAsync(closed, admin, user, refusedPlaintext, CancellationToken.None),
            refusedPlaintext, NativePasswordHash.Compute(refusedPlaintext));
        Assert.Contains("strict_password_validation", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(refusedPlaintext, server.GeneralLogText(), StringComparison.Ordinal);
        Assert.True(await server.CanLoginAsync(user, longEnough));
    }
}
