using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.DependencyInjection;
using Vault.Protocol.V1;
using Vault.Server.Rotation;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Rotation;

/// <summary>The scheduler on its own: short intervals rotate repeatedly, paused targets do not, manual and scheduled runs never overlap.</summary>
public sealed class SchedulingTests(TargetSystems systems) : IClassFixture<TargetSystems>
{
    [Fact]
    public async Task ShortInterval_RotatesOnItsOwn_Repeatedly_AndEachPasswordLogsIn()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var (targets, name, account) = await RegisterAsync(vault, TimeSpan.FromSeconds(2));

        var seen = new HashSet<string>(StringComparer.Ordinal);
        await RotationKit.WaitForTargetAsync(targets, vault.As(), name, t => t.Status.Version >= 3, TimeSpan.FromSeconds(45), "three scheduled rotations");
        var credential = await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, vault.As());
        Assert.True(await systems.Postgres.CanLoginAsync(account, credential.Password));
        var history = await RotationKit.HistoryAsync(targets, vault.As(), name);
        var scheduled = history.Where(e => e.Trigger == "scheduled" && e.Outcome == RotationOutcome.Succeeded).ToList();
        Assert.True(scheduled.Count >= 3, $"{scheduled.Count} scheduled rotations");
        var target = await targets.GetTargetAsync(new GetTargetRequest { Name = name }, vault.As());
        Assert.NotNull(target.Status.NextRotationAt);
    }

    [Fact]
    public async Task PausedTarget_DoesNotRotate_UntilResumed()
    {
        await using var vault = await TestVault.StartInitializedAsync();
        var (targets, name, account) = await RegisterAsync(vault, TimeSpan.FromSeconds(1), pausedFirst: true);

        await Task.Delay(TimeSpan.FromSeconds(5));
        var paused = await targets.GetTargetAsync(new GetTargetRequest { Name = name }, vault.As());
        Assert.True(paused.Status.Paused);
        Assert.Equal(0UL, paused.Status.Version);
        Assert.Null(paused.Status.NextRotationAt);
        Assert.DoesNotContain(await RotationKit.HistoryAsync(targets, vault.As(), name), e => e.Outcome == RotationOutcome.Succeeded);
        var refused = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(async () => await targets.RotateTargetAsync(new RotateTargetRequest { Name = name }, vault.As()));
        Assert.Equal(global::Grpc.Core.StatusCode.FailedPrecondition, refused.StatusCode);

        await targets.ResumeTargetAsync(new ResumeTargetRequest { Name = name }, vault.As());
        await RotationKit.WaitForTargetAsync(targets, vault.As(), name, t => t.Status.Version >= 1, TimeSpan.FromSeconds(30), "a rotation after resume");
        var credential = await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, vault.As());
        Assert.True(await systems.Postgres.CanLoginAsync(account, credential.Password));
    }

    [Fact]
    public async Task ManualRotate_DuringAScheduledOne_WaitsForIt_AndNeverRunsBesideIt()
    {
        var gate = new GateObserver();
        await using var vault = await TestVault.StartInitializedAsync(builder => builder.Services.AddSingleton<IRotationStepObserver>(gate));
        var (targets, name, account) = await RegisterAsync(vault, TimeSpan.FromHours(1), rotateNow: true);

        // The registration's rotation (run by the scheduler) stops after its set step.
        await gate.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var manual = targets.RotateTargetAsync(new RotateTargetRequest { Name = name }, vault.As()).ResponseAsync;
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.False(manual.IsCompleted, "the manual rotation ran while the scheduled one was between set and test");
        gate.Release.SetResult();

        var result = await manual.WaitAsync(TimeSpan.FromSeconds(30));
        if (result.Event.Outcome != RotationOutcome.Succeeded)
        {
            // Failed once in a loaded full run ("an interrupted rotation ... was finished"): the
            // whole history says what the scheduled run did after the gate opened.
            var all = await RotationKit.HistoryAsync(targets, vault.As(), name);
            Assert.Fail($"the manual rotation ended {result.Event.Outcome} at {result.Event.Step}: {result.Event.Reason}; history: {string.Join(" | ", all.OrderBy(e => e.Id).Select(e => $"{e.Trigger} {e.Outcome} {e.Step}: {e.Reason}"))}");
        }
        Assert.Equal(2UL, result.Target.Status.Version);
        var history = (await RotationKit.HistoryAsync(targets, vault.As(), name)).Where(e => e.Outcome == RotationOutcome.Succeeded).OrderBy(e => e.Id).ToList();
        Assert.Equal(["registration", "manual"], history.Select(e => e.Trigger));
        Assert.True(history[1].StartedAt.ToDateTime() >= history[0].FinishedAt.ToDateTime(), "the manual rotation started before the scheduled one finished");
        var credential = await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, vault.As());
        Assert.True(await systems.Postgres.CanLoginAsync(account, credential.Password));
    }

    private async Task<(TargetService.TargetServiceClient Targets, string Name, string Account)> RegisterAsync(TestVault vault, TimeSpan interval, bool pausedFirst = false, bool rotateNow = false)
    {
        var system = systems.Postgres;
        var targets = vault.Targets();
        var initial = $"Initial-{Guid.NewGuid():N}";
        var account = await system.CreateAccountAsync(initial);
        var admin = await RotationKit.PutAdminSecretAsync(vault.Kv, vault.As(), system);
        var name = RotationKit.UniqueName("sched");
        if (pausedFirst)
        {
            // Registered without a schedule, paused, then given one: no rotation can slip in between.
            await targets.PutTargetAsync(new PutTargetRequest { Target = RotationKit.Describe(system, name, account, admin), CurrentPassword = initial }, vault.As());
            await targets.PauseTargetAsync(new PauseTargetRequest { Name = name }, vault.As());
        }
        var target = RotationKit.Describe(system, name, account, admin);
        target.Schedule = new Protocol.V1.RotationSchedule { Interval = Duration.FromTimeSpan(interval), MaxJitter = Duration.FromTimeSpan(TimeSpan.Zero) };
        await targets.PutTargetAsync(new PutTargetRequest { Target = target, CurrentPassword = initial, RotateNow = rotateNow }, vault.As());
        return (targets, name, account);
    }

    /// <summary>Holds the first rotation after its set step until released.</summary>
    private sealed class GateObserver : IRotationStepObserver
    {
        private int _entered;

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task AfterStepAsync(string target, string step, CancellationToken cancellationToken)
        {
            if (step == RotationSteps.Set && Interlocked.Exchange(ref _entered, 1) == 0)
            {
                Entered.SetResult();
                await Release.Task.WaitAsync(cancellationToken);
            }
        }
    }
}
