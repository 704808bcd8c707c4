using Vault.Rotators;
using static Vault.Tests.Rotators.RotatorTestKit;

namespace Vault.Tests.Rotators;

/// <summary>
/// What every <see cref="ICredentialRotator"/> promises, run against each kind's real server: one
/// subclass per kind supplies the server and the few things that differ (how an account is made and
/// named, the server's code for a refused login, the statements that grant an ephemeral user
/// something). A new kind gets every case by writing a subclass. Behaviour only one system has
/// (PostgreSQL's pooled admin session, MariaDB's host part, libldap's signal handling) stays in
/// that kind's own test class.
/// </summary>
public abstract class RotatorContractTests
{
    protected abstract ICredentialRotator Rotator { get; }

    /// <summary>The shared server, as a target.</summary>
    protected abstract TargetConnection Target();

    /// <summary>An admin who may change any account's password.</summary>
    protected abstract Credential Admin { get; }

    /// <summary>Makes an account that logs in with <paramref name="password"/> and may change nothing; returns its name as a target names it.</summary>
    protected abstract Task<string> CreateAccountAsync(string password, string prefix);

    /// <summary>Whether <paramref name="account"/> logs in with <paramref name="password"/>, asked of the server directly (not through the rotator).</summary>
    protected abstract Task<bool> CanLoginAsync(string account, string password);

    /// <summary>A well-formed account name that does not exist.</summary>
    protected abstract string MissingAccount();

    /// <summary>The server's code for a wrong password, which the refusal's reason must carry.</summary>
    protected abstract string RefusedLoginCode { get; }

    /// <summary>The server's code for a missing account, if the rotator's message carries one.</summary>
    protected virtual string? AccountNotFoundCode => null;

    /// <summary>The server's code for a missing privilege, if the rotator's message carries one.</summary>
    protected virtual string? NoPrivilegeCode => null;

    /// <summary>Everything the server writes about what it was sent (statement log, general log, slapd's output).</summary>
    protected abstract string ServerLog();

    /// <summary>Forms of a password that must not appear in a failure either (a hash that logs in as well as the password does).</summary>
    protected virtual string[] SecretForms(string password) => [password];

    /// <summary>True for the kinds whose contract includes ephemeral users (<see cref="EphemeralUserContractTests"/>).</summary>
    protected virtual bool MakesEphemeralUsers => false;

    [Fact]
    public async Task SetPassword_NewPasswordLogsIn_AndTheOldIsRefused()
    {
        var old = NewPassword();
        var account = await CreateAccountAsync(old, "ctset");
        var fresh = NewPassword();

        await Rotator.SetPasswordAsync(Target(), Admin, account, fresh, CancellationToken.None);

        Assert.True(await CanLoginAsync(account, fresh));
        Assert.False(await CanLoginAsync(account, old));
        Assert.Equal(LoginOutcome.Accepted, (await Rotator.VerifyLoginAsync(Target(), new Credential(account, fresh), CancellationToken.None)).Outcome);
        var refused = await Rotator.VerifyLoginAsync(Target(), new Credential(account, old), CancellationToken.None);
        Assert.Equal(LoginOutcome.Refused, refused.Outcome);
        Assert.Contains(RefusedLoginCode, refused.Reason, StringComparison.Ordinal);
        AssertNoSecret(refused.Reason!, [.. SecretForms(old), .. SecretForms(fresh)]);
    }

    [Fact]
    public async Task SetPassword_LeavesNoPasswordInTheServersLog()
    {
        var account = await CreateAccountAsync(NewPassword(), "ctlog");
        var fresh = NewPassword();

        await Rotator.SetPasswordAsync(Target(), Admin, account, fresh, CancellationToken.None);

        Assert.True(await CanLoginAsync(account, fresh));
        AssertNoSecret(ServerLog(), fresh);
    }

    [Fact]
    public async Task VerifyLogin_ForAMissingAccount_IsRefused()
    {
        var check = await Rotator.VerifyLoginAsync(Target(), new Credential(MissingAccount(), NewPassword()), CancellationToken.None);

        Assert.Equal(LoginOutcome.Refused, check.Outcome);
    }

    [Fact]
    public async Task SetPassword_ForAMissingAccount_IsAccountNotFound()
    {
        var fresh = NewPassword();

        var ex = await FailsWith(RotatorFailure.AccountNotFound,
            () => Rotator.SetPasswordAsync(Target(), Admin, MissingAccount(), fresh, CancellationToken.None), [.. SecretForms(fresh), Admin.Password]);

        Assert.Contains("set password", ex.Message, StringComparison.Ordinal);
        if (AccountNotFoundCode is { } code)
        {
            Assert.Contains(code, ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task SetPassword_WithAWrongAdminPassword_IsAdminRefused()
    {
        var account = await CreateAccountAsync(NewPassword(), "ctadm");
        var fresh = NewPassword();
        var wrong = NewPassword();

        await FailsWith(RotatorFailure.AdminRefused,
            () => Rotator.SetPasswordAsync(Target(), Admin with { Password = wrong }, account, fresh, CancellationToken.None), [.. SecretForms(fresh), wrong]);
    }

    [Fact]
    public async Task SetPassword_ByAnAdminWithoutThePrivilege_IsAdminRefused_AndChangesNothing()
    {
        var adminPassword = NewPassword();
        var weakAdmin = await CreateAccountAsync(adminPassword, "ctweak");
        var old = NewPassword();
        var account = await CreateAccountAsync(old, "ctvictim");
        var fresh = NewPassword();

        var ex = await FailsWith(RotatorFailure.AdminRefused,
            () => Rotator.SetPasswordAsync(Target(), new Credential(weakAdmin, adminPassword), account, fresh, CancellationToken.None), [.. SecretForms(fresh), adminPassword]);

        if (NoPrivilegeCode is { } code)
        {
            Assert.Contains(code, ex.Message, StringComparison.Ordinal);
        }
        Assert.True(await CanLoginAsync(account, old));
    }

    [Fact]
    public async Task NothingListening_IsUnreachable_ForSetAndVerify()
    {
        var target = Target() with { Host = "127.0.0.1", Port = FreePort() };
        var fresh = NewPassword();

        await FailsWith(RotatorFailure.Unreachable, () => Rotator.SetPasswordAsync(target, Admin, MissingAccount(), fresh, CancellationToken.None), [.. SecretForms(fresh), Admin.Password]);
        Assert.Equal(LoginOutcome.Unreachable, (await Rotator.VerifyLoginAsync(target, new Credential(MissingAccount(), fresh), CancellationToken.None)).Outcome);
    }

    [Fact]
    public async Task AServerThatNeverAnswers_IsUnreachableAfterTheConnectTimeout()
    {
        await using var silent = new SilentServer();
        var target = Target() with { Host = "127.0.0.1", Port = silent.Port, ConnectTimeout = TimeSpan.FromSeconds(1) };
        LoginCheck? check = null;

        // WaitAsync: fail rather than hang if the bound is lost.
        var elapsed = await TimeAsync(async () => check = await Rotator.VerifyLoginAsync(target, new Credential(MissingAccount(), NewPassword()), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30)));

        Assert.Equal(LoginOutcome.Unreachable, check!.Outcome);
        Assert.True(elapsed < TimeSpan.FromSeconds(10), $"took {elapsed}");
    }

    [Fact]
    public async Task Cancelling_AHungConnect_EndsInCancellation_NotAFailureOfTheTarget()
    {
        // Some drivers do not observe the token while a hung server holds the handshake and give up
        // at the connect timeout; the rotator must then report the cancellation, not a failure.
        await using var silent = new SilentServer();
        var target = Target() with { Host = "127.0.0.1", Port = silent.Port, ConnectTimeout = TimeSpan.FromSeconds(2) };
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        var elapsed = await TimeAsync(() => Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => Rotator.SetPasswordAsync(target, Admin, MissingAccount(), NewPassword(), cancel.Token)));

        Assert.True(elapsed < TimeSpan.FromSeconds(10), $"took {elapsed}");
    }

    [Fact]
    public async Task EphemeralUsers_AreOfferedExactlyByTheKindsThatMakeThem()
    {
        Assert.Equal(MakesEphemeralUsers, Rotator.SupportsEphemeralUsers);
        if (!MakesEphemeralUsers)
        {
            var user = new EphemeralUser($"eph_{Guid.NewGuid():N}"[..24], NewPassword(), DateTimeOffset.UtcNow.AddHours(1), []);
            await Assert.ThrowsAsync<NotSupportedException>(() => Rotator.CreateEphemeralUserAsync(Target(), Admin, user, CancellationToken.None));
        }
    }
}

/// <summary>The rotator contract of the kinds that also make short-lived users (dynamic roles).</summary>
public abstract class EphemeralUserContractTests : RotatorContractTests
{
    protected override bool MakesEphemeralUsers => true;

    /// <summary>A grant statement (with <c>{{name}}</c>) that gives the new user something it can use.</summary>
    protected abstract string WorkingGrant { get; }

    /// <summary>A grant statement the server refuses (an object that does not exist).</summary>
    protected abstract string FailingGrant { get; }

    /// <summary>Whether a user of that name exists, asked of the server directly.</summary>
    protected abstract Task<bool> UserExistsAsync(string name);

    [Fact]
    public async Task EphemeralUser_LogsInUntilRevoked_ThenIsRefused_AndRevokingAgainSucceeds()
    {
        var name = $"eph_{Guid.NewGuid():N}"[..24];
        var password = NewPassword();
        var user = new EphemeralUser(name, password, DateTimeOffset.UtcNow.AddHours(1), [WorkingGrant]);

        await Rotator.CreateEphemeralUserAsync(Target(), Admin, user, CancellationToken.None);

        Assert.Equal(LoginOutcome.Accepted, (await Rotator.VerifyLoginAsync(Target(), new Credential(name, password), CancellationToken.None)).Outcome);
        AssertNoSecret(ServerLog(), password);

        await Rotator.RevokeEphemeralUserAsync(Target(), Admin, name, CancellationToken.None);

        Assert.Equal(LoginOutcome.Refused, (await Rotator.VerifyLoginAsync(Target(), new Credential(name, password), CancellationToken.None)).Outcome);
        Assert.False(await UserExistsAsync(name));
        await Rotator.RevokeEphemeralUserAsync(Target(), Admin, name, CancellationToken.None);
    }

    [Fact]
    public async Task EphemeralUsers_RevokedTogether_AreAllGone_AndOnesAlreadyGoneAreNoFailure()
    {
        var users = Enumerable.Range(0, 3).Select(_ => new EphemeralUser($"eph_{Guid.NewGuid():N}"[..24], NewPassword(), DateTimeOffset.UtcNow.AddHours(1), [WorkingGrant])).ToList();
        foreach (var user in users)
        {
            await Rotator.CreateEphemeralUserAsync(Target(), Admin, user, CancellationToken.None);
        }
        var neverMade = $"eph_{Guid.NewGuid():N}"[..24];

        var refused = await Rotator.RevokeEphemeralUsersAsync(Target(), Admin, [.. users.Select(u => u.Username), neverMade], CancellationToken.None);

        Assert.Empty(refused);
        foreach (var user in users)
        {
            Assert.False(await UserExistsAsync(user.Username), $"{user.Username} is left behind");
            Assert.Equal(LoginOutcome.Refused, (await Rotator.VerifyLoginAsync(Target(), new Credential(user.Username, user.Password), CancellationToken.None)).Outcome);
        }
        Assert.Empty(await Rotator.RevokeEphemeralUsersAsync(Target(), Admin, [.. users.Select(u => u.Username)], CancellationToken.None));
    }

    [Fact]
    public async Task EphemeralUser_WhoseGrantFails_IsNotLeftBehind()
    {
        var name = $"eph_{Guid.NewGuid():N}"[..24];
        var password = NewPassword();
        var user = new EphemeralUser(name, password, DateTimeOffset.UtcNow.AddHours(1), [FailingGrant]);

        var ex = await FailsWith(RotatorFailure.Other, () => Rotator.CreateEphemeralUserAsync(Target(), Admin, user, CancellationToken.None), SecretForms(password));

        Assert.Contains("grant statement 1 of 1", ex.Message, StringComparison.Ordinal);
        Assert.False(await UserExistsAsync(name));
    }

    [Fact]
    public async Task EphemeralUser_ThatExistsAlready_IsRefused_AndKeepsItsPassword()
    {
        var old = NewPassword();
        var name = await CreateAccountAsync(old, "ctexists");
        var password = NewPassword();

        var ex = await FailsWith(RotatorFailure.Other,
            () => Rotator.CreateEphemeralUserAsync(Target(), Admin, new EphemeralUser(name, password, DateTimeOffset.UtcNow.AddHours(1), []), CancellationToken.None), SecretForms(password));

        Assert.Contains("already exists", ex.Message, StringComparison.Ordinal);
        Assert.True(await CanLoginAsync(name, old));
    }
}
