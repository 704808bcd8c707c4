using Vault.Rotators;
using Vault.Rotators.Ldap;
using static Vault.Tests.Rotators.RotatorTestKit;

namespace Vault.Tests.Rotators;

[Collection("ldap")]
public sealed class LdapRotatorTests(LdapServer server)
{
    private readonly LdapRotator _rotator = new();

    private TargetConnection Target() => RotatorTestKit.Target(server.Host, server.Port, server.BaseDn);

    private Credential Admin => new(server.AdminDn, server.AdminPassword);

    [Fact]
    public async Task SetPassword_NewPasswordBinds_AndTheOldIsRefused()
    {
        var old = NewPassword();
        var dn = await server.CreateUserAsync(old, "ldrot");
        var fresh = NewPassword();

        await _rotator.SetPasswordAsync(Target(), Admin, dn, fresh, CancellationToken.None);

        Assert.True(await server.CanBindAsync(dn, fresh));
        Assert.False(await server.CanBindAsync(dn, old));
        Assert.Equal(LoginOutcome.Accepted, (await _rotator.VerifyLoginAsync(Target(), new Credential(dn, fresh), CancellationToken.None)).Outcome);
        var refused = await _rotator.VerifyLoginAsync(Target(), new Credential(dn, old), CancellationToken.None);
        Assert.Equal(LoginOutcome.Refused, refused.Outcome);
        Assert.Contains("49", refused.Reason, StringComparison.Ordinal);
        AssertNoSecret(refused.Reason!, old, fresh);
    }

    [Fact]
    public async Task SetPassword_WithSymbolsAndALongPassword_RoundTrips()
    {
        var dn = await server.CreateUserAsync(NewPassword(), "ldlong");
        // Over 127 bytes, so the BER lengths take the long form; symbols a shell or LDIF would mangle.
        var fresh = "p@ss:w0rd/=,+\"'\\;<>#" + NewPassword() + NewPassword() + NewPassword() + NewPassword();

        await _rotator.SetPasswordAsync(Target(), Admin, dn, fresh, CancellationToken.None);

        Assert.Equal(LoginOutcome.Accepted, (await _rotator.VerifyLoginAsync(Target(), new Credential(dn, fresh), CancellationToken.None)).Outcome);
    }

    [Fact]
    public async Task VerifyLogin_ForAMissingEntry_IsRefused()
    {
        var check = await _rotator.VerifyLoginAsync(Target(), new Credential($"uid=missing-{Guid.NewGuid():N},{server.BaseDn}", NewPassword()), CancellationToken.None);
        Assert.Equal(LoginOutcome.Refused, check.Outcome);
    }

    [Fact]
    public async Task SetPassword_ForAMissingEntry_IsAccountNotFound()
    {
        var fresh = NewPassword();
        var ex = await FailsWith(RotatorFailure.AccountNotFound,
            () => _rotator.SetPasswordAsync(Target(), Admin, $"uid=missing-{Guid.NewGuid():N},{server.BaseDn}", fresh, CancellationToken.None), fresh, server.AdminPassword);
        Assert.Contains("set password", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SetPassword_WithAWrongAdminPassword_IsAdminRefused()
    {
        var dn = await server.CreateUserAsync(NewPassword(), "ldadm");
        var fresh = NewPassword();
        var wrong = NewPassword();
        await FailsWith(RotatorFailure.AdminRefused,
            () => _rotator.SetPasswordAsync(Target(), new Credential(server.AdminDn, wrong), dn, fresh, CancellationToken.None), fresh, wrong);
    }

    [Fact]
    public async Task SetPassword_ByAnAdminWithoutWriteAccess_IsAdminRefused_AndChangesNothing()
    {
        var adminPassword = NewPassword();
        var weakAdmin = await server.CreateUserAsync(adminPassword, "ldweak");
        var old = NewPassword();
        var dn = await server.CreateUserAsync(old, "ldvictim");
        var fresh = NewPassword();

        var ex = await FailsWith(RotatorFailure.AdminRefused,
            () => _rotator.SetPasswordAsync(Target(), new Credential(weakAdmin, adminPassword), dn, fresh, CancellationToken.None), fresh, adminPassword);
        Assert.Contains("50", ex.Message, StringComparison.Ordinal);
        Assert.True(await server.CanBindAsync(dn, old));
    }

    [Fact]
    public async Task NothingListening_IsUnreachable_ForSetAndVerify()
    {
        var target = RotatorTestKit.Target("127.0.0.1", FreePort());
        var fresh = NewPassword();
        await FailsWith(RotatorFailure.Unreachable, () => _rotator.SetPasswordAsync(target, Admin, $"uid=svc,{server.BaseDn}", fresh, CancellationToken.None), fresh, server.AdminPassword);
        Assert.Equal(LoginOutcome.Unreachable, (await _rotator.VerifyLoginAsync(target, new Credential($"uid=svc,{server.BaseDn}", fresh), CancellationToken.None)).Outcome);
    }

    [Fact]
    public async Task AServerThatNeverAnswers_IsUnreachableAfterTheConnectTimeout()
    {
        // libldap's synchronous bind ignores LdapConnection.Timeout; LibLdapOptions bounds it.
        Assert.True(LibLdapOptions.Available, "libldap's ldap_set_option was not found");
        await using var silent = new SilentServer();
        var target = RotatorTestKit.Target("127.0.0.1", silent.Port) with { ConnectTimeout = TimeSpan.FromSeconds(1) };
        LoginCheck? check = null;
        // WaitAsync: fail rather than hang if the bound is lost.
        var elapsed = await TimeAsync(async () => check = await _rotator.VerifyLoginAsync(target, new Credential($"uid=svc,{server.BaseDn}", NewPassword()), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(LoginOutcome.Unreachable, check!.Outcome);
        Assert.True(elapsed < TimeSpan.FromSeconds(10), $"took {elapsed}");
    }

    [Fact]
    public async Task AWaitInterruptedBySignals_StillRunsToTheTimeout()
    {
        // Without LDAP_OPT_RESTART a signal landing on the thread that waits for the bind's answer
        // ends the wait at once with "server down" (81). Alone this test rarely hits it; in the full
        // suite, with the other fixtures starting and stopping server processes, it failed in about
        // half the runs before the option was set. The children started here add SIGCHLDs of our own.
        await using var silent = new SilentServer();
        var target = RotatorTestKit.Target("127.0.0.1", silent.Port) with { ConnectTimeout = TimeSpan.FromSeconds(2) };
        using var stop = new CancellationTokenSource();
        var signals = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var child = System.Diagnostics.Process.Start("true")!;
                await child.WaitForExitAsync();
                await Task.Delay(20);
            }
        });
        LoginCheck? check = null;
        var elapsed = await TimeAsync(async () => check = await _rotator.VerifyLoginAsync(target, new Credential($"uid=svc,{server.BaseDn}", NewPassword()), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30)));
        await stop.CancelAsync();
        await signals;
        Assert.Equal(LoginOutcome.Unreachable, check!.Outcome);
        Assert.True(elapsed >= TimeSpan.FromSeconds(1.5), $"the wait ended after {elapsed}: {check.Reason}");
    }

    [Fact]
    public async Task Cancelling_AHungBind_ReturnsPromptly()
    {
        await using var silent = new SilentServer();
        var target = RotatorTestKit.Target("127.0.0.1", silent.Port) with { ConnectTimeout = TimeSpan.FromSeconds(30) };
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var elapsed = await TimeAsync(() => Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => _rotator.SetPasswordAsync(target, Admin, $"uid=svc,{server.BaseDn}", NewPassword(), cancel.Token)));
        Assert.True(elapsed < TimeSpan.FromSeconds(5), $"took {elapsed}");
    }
}
