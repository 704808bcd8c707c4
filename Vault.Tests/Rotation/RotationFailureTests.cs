using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Vault.Protocol.V1;
using Vault.Server.Rotation;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Rotation;

/// <summary>Rotations that cannot complete: a server that is down, a new password that cannot log in.</summary>
public sealed class RotationFailureTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    [Fact]
    public async Task ServerDown_RotationFailsWithItsReason_RetriesBackOff_OldPasswordSurvives_AndTheNextRotationSucceeds()
    {
        await using var pg = await PostgresServer.StartAsync();
        var system = new PostgresSystem(pg);
        // The vault's clock is a fake one, moved by the test to each retry's due time: the point is the
        // vault's backoff, not a real wait (the database still sees real connection attempts).
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await TestVault.StartInitializedAsync(
            builder => builder.Services.AddSingleton<TimeProvider>(clock), "--Vault:Rotation:RetryBase=00:00:02", "--Vault:Rotation:RetryMax=00:01:00");
        var targets = vault.Targets();
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await system.CreateAccountAsync(initial);
        var admin = await RotationKit.PutAdminSecretAsync(vault.Kv, vault.As(), system);
        var name = RotationKit.UniqueName("down");
        var target = RotationKit.Describe(system, name, account, admin);
        target.Schedule = new Protocol.V1.RotationSchedule { Interval = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromHours(1)) };
        await targets.PutTargetAsync(new PutTargetRequest { Target = target, CurrentPassword = initial }, vault.As());

        await pg.StopAsync();
        var first = await targets.RotateTargetAsync(new RotateTargetRequest { Name = name }, vault.As());
        Assert.Equal(RotationOutcome.Failed, first.Event.Outcome);
        Assert.Equal("set", first.Event.Step);
        Assert.Contains("unreachable", first.Event.Reason, StringComparison.Ordinal);
        Assert.Equal(TargetState.Retrying, first.Target.Status.State);
        // The server refused the connection, so the new password was never sent: it is dropped
        // (issue 11, item 5; this used to keep it pending and refuse a plain delete).
        Assert.Contains("nothing was sent", first.Event.Reason, StringComparison.Ordinal);
        Assert.Equal("", first.Target.Status.PendingStep);

        // Retries come on their own, each further apart: 2 s, 4 s, 8 s, 16 s after the one before.
        for (var failures = 1; failures <= 4; failures++)
        {
            var status = (await targets.GetTargetAsync(new GetTargetRequest { Name = name }, vault.As())).Status;
            Assert.Equal((uint)failures, status.ConsecutiveFailures);
            Assert.NotNull(status.NextRotationAt);
            clock.SetUtcNow(status.NextRotationAt.ToDateTimeOffset());
            await RotationKit.WaitForTargetAsync(targets, vault.As(), name, t => t.Status.ConsecutiveFailures > (uint)failures, TimeSpan.FromSeconds(30), $"retry {failures} to run at its due time");
        }
        var failed = (await RotationKit.HistoryAsync(targets, vault.As(), name)).Where(e => e.Outcome == RotationOutcome.Failed).OrderBy(e => e.Id).ToList();
        Assert.Equal(5, failed.Count);
        Assert.All(failed, f => Assert.False(string.IsNullOrEmpty(f.Reason)));
        var gaps = failed.Zip(failed.Skip(1), (a, b) => (b.StartedAt.ToDateTime() - a.StartedAt.ToDateTime()).TotalSeconds).ToList();
        Assert.True(gaps.SequenceEqual([2.0, 4.0, 8.0, 16.0]), $"retry gaps: {string.Join(", ", gaps.Select(g => g.ToString("F3")))}");

        await pg.RestartAsync();
        Assert.True(await system.CanLoginAsync(account, initial), "the old password no longer logs in after the failed rotations");
        var held = await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, vault.As());
        Assert.Equal(initial, held.Password);

        var next = await targets.RotateTargetAsync(new RotateTargetRequest { Name = name }, vault.As());
        Assert.True(next.Event.Outcome == RotationOutcome.Succeeded, $"{next.Event.Step}: {next.Event.Reason}");
        var credential = await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, vault.As());
        Assert.True(await system.CanLoginAsync(account, credential.Password));
        Assert.False(await system.CanLoginAsync(account, initial));
        Assert.Equal(TargetState.Ready, next.Target.Status.State);
        Assert.Equal(0U, next.Target.Status.ConsecutiveFailures);
    }

    [Fact]
    public async Task ARetryWhoseDueTimeComesWhileTheRunBeforeItIsEnding_RunsAtThatTime()
    {
        // The scheduler lets a target run at most once a second. That second used to be counted from
        // when a run ended, after its audit write: a clock that reached the next retry before then
        // found it inside the cooldown, and the scheduler slept on a timer the clock never reached
        // (a full run caught the test above waiting 30 s for retry 3). Here the clock moves to the
        // next retry the moment a scheduled retry's failure is stored, before that run has ended.
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var vault = await TestVault.StartInitializedAsync(
            builder => builder.Services.AddSingleton<TimeProvider>(clock), "--Vault:Rotation:RetryBase=00:00:02");
        var targets = vault.Targets();
        var admin = $"admin/{Guid.NewGuid():N}";
        await vault.Kv.PutAsync(new PutSecretRequest { Path = admin, Data = { ["username"] = "vault_admin", ["password"] = "admin-password" } }, vault.As());
        var name = RotationKit.UniqueName("due-while-ending");
        var target = new Target
        {
            Name = name, Kind = "postgres", Account = "app", AdminSecret = admin,
            Connection = new TargetConnection { Host = "127.0.0.1", Port = (uint)UnreachableTargetTests.ClosedPort() },
            Schedule = new Protocol.V1.RotationSchedule { Interval = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromHours(1)) },
        };
        await targets.PutTargetAsync(new PutTargetRequest { Target = target, CurrentPassword = "Initial-password-1", SkipVerification = true }, vault.As());
        var repository = vault.Services.GetRequiredService<TargetRepository>();
        var moved = 0;
        repository.Changed += () =>
        {
            if (repository.TryGet(name) is { ConsecutiveFailures: 2, NextDueAtUnixMs: { } due } && Interlocked.Exchange(ref moved, 1) == 0)
            {
                clock.SetUtcNow(DateTimeOffset.FromUnixTimeMilliseconds(due));
            }
        };

        var first = await targets.RotateTargetAsync(new RotateTargetRequest { Name = name }, vault.As());
        Assert.Equal(RotationOutcome.Failed, first.Event.Outcome);
        clock.SetUtcNow(first.Target.Status.NextRotationAt.ToDateTimeOffset());

        await RotationKit.WaitForTargetAsync(targets, vault.As(), name, t => t.Status.ConsecutiveFailures >= 3, TimeSpan.FromSeconds(30), "the retry due as the one before it ended");
        Assert.Equal(1, moved);
    }

    [Fact]
    public async Task NewPasswordThatCannotLogIn_IsRolledBack_AndTheFailureIsRecorded()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var targets = vault.Targets();
        var system = systems.Postgres;
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await system.CreateAccountAsync(initial);
        var admin = await RotationKit.PutAdminSecretAsync(vault.Kv, vault.As(), system);
        var name = RotationKit.UniqueName("nologin");
        await targets.PutTargetAsync(new PutTargetRequest { Target = RotationKit.Describe(system, name, account, admin), CurrentPassword = initial }, vault.As());
        // The account loses LOGIN: setting its password works, logging in with it does not.
        await systems.PostgresServer.ExecuteAsync($"ALTER ROLE \"{account}\" NOLOGIN");

        var result = await targets.RotateTargetAsync(new RotateTargetRequest { Name = name }, vault.As());

        Assert.Equal(RotationOutcome.Failed, result.Event.Outcome);
        Assert.Equal("test", result.Event.Step);
        Assert.Contains("refused", result.Event.Reason, StringComparison.Ordinal);
        Assert.Contains("rolled back", result.Event.Reason, StringComparison.Ordinal);
        Assert.Equal(TargetState.Retrying, result.Target.Status.State);
        Assert.Equal(0UL, result.Target.Status.Version);
        Assert.False(string.IsNullOrEmpty(result.Target.Status.LastError));
        var held = await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, vault.As());
        Assert.Equal(initial, held.Password);

        await systems.PostgresServer.ExecuteAsync($"ALTER ROLE \"{account}\" LOGIN");
        Assert.True(await system.CanLoginAsync(account, initial), "the account is not back on its current password");
    }

    [Fact]
    public async Task PasswordTheTargetsPolicyRejects_IsReportedAsSuch_AndTheCurrentPasswordStays()
    {
        await using var maria = await MariaDbServer.StartAsync();
        await maria.ExecuteAsync("INSTALL SONAME 'simple_password_check'");
        await maria.ExecuteAsync("SET GLOBAL simple_password_check_minimal_length = 40");
        var system = new MariaDbSystem(maria);
        await using var vault = await TestVault.StartInitializedAsync();
        var targets = vault.Targets();
        var initial = $"Initial-{Guid.NewGuid():N}-Aa1!";
        var account = await system.CreateAccountAsync(initial);
        var admin = await RotationKit.PutAdminSecretAsync(vault.Kv, vault.As(), system);
        var name = RotationKit.UniqueName("policy");
        var target = RotationKit.Describe(system, name, account, admin);
        // The plugin can only judge plaintext, so this target opts in to sending it.
        target.Connection.Options["plaintext_fallback"] = "true";
        await targets.PutTargetAsync(new PutTargetRequest { Target = target, CurrentPassword = initial }, vault.As());

        var rejected = await targets.RotateTargetAsync(new RotateTargetRequest { Name = name }, vault.As());

        Assert.Equal(RotationOutcome.Failed, rejected.Event.Outcome);
        Assert.Equal("set", rejected.Event.Step);
        Assert.Contains("rejected by the target's password policy", rejected.Event.Reason, StringComparison.Ordinal);
        Assert.Contains("nothing was changed", rejected.Event.Reason, StringComparison.Ordinal);
        Assert.True(await system.CanLoginAsync(account, initial));

        // A policy the target accepts: 48 characters with symbols.
        target.PasswordPolicy = new PasswordPolicy { Length = 48, Alphabet = Vault.Rotators.Passwords.PasswordPolicy.SafeAlphabet + "!%", RequireLower = true, RequireUpper = true, RequireDigit = true, RequireSymbol = true };
        await targets.PutTargetAsync(new PutTargetRequest { Target = target }, vault.As());
        var accepted = await targets.RotateTargetAsync(new RotateTargetRequest { Name = name }, vault.As());
        Assert.True(accepted.Event.Outcome == RotationOutcome.Succeeded, $"{accepted.Event.Step}: {accepted.Event.Reason}");
        var credential = await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, vault.As());
        Assert.Equal(48, credential.Password.Length);
        Assert.True(await system.CanLoginAsync(account, credential.Password));
    }
}
