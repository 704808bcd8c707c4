using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Server.Identity;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Identity;

/// <summary>
/// One hour of production access, approved by two colleagues: a 2-of-3 grant exercised by four
/// real people — the requester and three approvers — over the API, on a fake clock the tests move.
/// </summary>
public sealed class AccessRequestTests(ClockedVault fixture) : IClassFixture<ClockedVault>
{
    private const string Password = "a long passphrase for everyone";

    private TestVault Vault => fixture.Vault;

    private AccessService.AccessServiceClient Access => new(Vault.Channel);

    private sealed record Team(string Requester, string Ann, string Ben, string Cat, string Grant, string Secret);

    private async Task<string> LoginAsync(string name) =>
        (await new UserpassService.UserpassServiceClient(Vault.Channel).LoginAsync(new UserpassLoginRequest { Username = name, Password = Password })).Token;

    private async Task<string> UserAsync(string tag, params string[] policies)
    {
        var name = $"{tag}-{Guid.NewGuid():N}"[..20];
        await new UserpassService.UserpassServiceClient(Vault.Channel).PutUserAsync(new PutUserRequest { User = new User { Name = name, Policies = { policies } }, Password = Password }, Vault.As());
        return name;
    }

    private async Task PolicyAsync(string name, string path, params string[] capabilities) =>
        await Vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = name, Rules = { new PolicyRule { Path = path, Capabilities = { capabilities } } } } }, Vault.As());

    /// <summary>A production secret, a policy that reads it, a grant of that policy needing 2 of the 3 approvers' approvals, and the four people.</summary>
    private async Task<Team> TeamAsync(Action<Grant>? shape = null)
    {
        var tag = Guid.NewGuid().ToString("N")[..8];
        var secret = $"prod-{tag}/db";
        await Vault.Kv.PutAsync(new PutSecretRequest { Path = secret, Data = { ["password"] = "production" } }, Vault.As());
        await PolicyAsync($"prod-read-{tag}", $"kv/prod-{tag}/*", "read");
        await PolicyAsync($"requesters-{tag}", $"access/grant/prod-{tag}/request", "create");
        var requester = await UserAsync("dave", $"requesters-{tag}");
        var ann = await UserAsync("ann");
        var ben = await UserAsync("ben");
        var cat = await UserAsync("cat");
        var identity = new IdentityService.IdentityServiceClient(Vault.Channel);
        await identity.PutGroupAsync(new PutGroupRequest { Group = new Group { Name = $"approvers-{tag}", Members = { ann, ben, cat } } }, Vault.As());
        var grant = new Grant
        {
            Name = $"prod-{tag}",
            Policies = { $"prod-read-{tag}" },
            MaxDuration = Duration.FromTimeSpan(TimeSpan.FromHours(1)),
            ApproverGroup = $"approvers-{tag}",
            ApprovalsRequired = 2,
        };
        shape?.Invoke(grant);
        await Access.PutGrantAsync(new PutGrantRequest { Grant = grant }, Vault.As());
        return new Team(requester, ann, ben, cat, grant.Name, secret);
    }

    private async Task<bool> CanReadAsync(string token, string path)
    {
        try
        {
            await Vault.Kv.GetAsync(new GetSecretRequest { Path = path }, Vault.As(token));
            return true;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.PermissionDenied)
        {
            return false;
        }
    }

    private async Task<AccessRequest> RequestAsync(Team team, string token, TimeSpan? duration = null) =>
        await Access.CreateRequestAsync(new CreateAccessRequestRequest
        {
            Grant = team.Grant,
            Reason = "INC-4242: the billing database is refusing connections",
            Duration = duration is { } d ? Duration.FromTimeSpan(d) : null,
        }, Vault.As(token));

    private Task<Telemetry.EventWatch> WatchAccessEventsAsync() => Telemetry.EventWatch.StartAsync(Vault.Channel, Vault.As(), "access.");

    private Task<AccessRequest> ApproveAsync(string id, string token) =>
        Access.ApproveAsync(new ApproveAccessRequestRequest { Id = id, Comment = "looked at the incident" }, Vault.As(token)).ResponseAsync;

    private async Task WaitForStateAsync(string id, string state)
    {
        for (var waited = 0; ; waited += 20)
        {
            var current = (await Access.GetRequestAsync(new GetAccessRequestRequest { Id = id }, Vault.As())).State;
            if (current == state)
            {
                return;
            }
            Assert.True(waited < 15_000, $"request {id} is {current}, not {state}, 15 s after it was due (the reaper did not record it)");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task TwoOfThreeApprovals_GiveTheRequesterAccess_ThatSurvivesARestart_AndEndsOnTime()
    {
        var team = await TeamAsync();
        var dave = await LoginAsync(team.Requester);
        var request = await RequestAsync(team, dave, TimeSpan.FromMinutes(30));
        Assert.Equal(("pending", 2u), (request.State, request.ApprovalsRequired));
        Assert.False(await CanReadAsync(dave, team.Secret));

        var own = await Rpc.FailsWith(StatusCode.PermissionDenied, () => ApproveAsync(request.Id, dave));
        Assert.Contains("own request", own.Status.Detail, StringComparison.Ordinal);
        var ann = await LoginAsync(team.Ann);
        await ApproveAsync(request.Id, ann);
        var twice = await ApproveAsync(request.Id, ann);
        Assert.Equal(("pending", 1), (twice.State, twice.Approvals.Count));
        Assert.False(await CanReadAsync(dave, team.Secret));

        var events = await WatchAccessEventsAsync();
        var active = await ApproveAsync(request.Id, await LoginAsync(team.Ben));
        var approved = await events.NextAsync();
        events.Dispose();

        Assert.Equal("active", active.State);
        // For bots: the approval that put the grant in effect, who asked and who answered last.
        Assert.Equal("access.request_approved", approved.Type);
        Assert.Equal((request.Id, team.Grant, team.Requester, team.Ben), (approved.Attributes["request_id"], approved.Attributes["grant"], approved.Attributes["requester"], approved.Attributes["by"]));
        Assert.Equal([team.Ann, team.Ben], active.Approvals.Select(a => a.Entity));
        Assert.Equal(fixture.Clock.GetUtcNow() + TimeSpan.FromMinutes(30), active.EndsAt.ToDateTimeOffset(), TimeSpan.FromSeconds(1));
        Assert.True(await CanReadAsync(dave, team.Secret), "the requester's token did not gain the grant's policy at the second approval");

        await Vault.RestartAsync();
        await Vault.UnsealAsync();
        Assert.True(await CanReadAsync(dave, team.Secret), "the grant did not survive a restart");

        fixture.Clock.Advance(TimeSpan.FromMinutes(30));
        Assert.False(await CanReadAsync(dave, team.Secret), "the grant outlived its end");
        await WaitForStateAsync(request.Id, "ended");
        // The end is the vault's own step, audited with whose grant it was.
        var end = Assert.Single((await new AuditService.AuditServiceClient(Vault.Channel).TailAsync(new TailAuditRequest { PathPrefix = $"access/request/{request.Id}", Limit = 20 }, Vault.As())).Entries,
            e => e.Rpc == "access.ended");
        Assert.Equal(("system:access", team.Requester), (end.Accessor, end.Entity));
    }

    [Fact]
    public async Task AWatcher_SeesTheSnapshot_ThenEachNewRequestAndEachApproval()
    {
        var team = await TeamAsync();
        var dave = await LoginAsync(team.Requester);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var watch = Access.WatchRequests(new WatchAccessRequestsRequest { State = "pending" }, Vault.As().WithCancellationToken(deadline.Token));
        var events = watch.ResponseStream;
        while (await events.MoveNext() && !events.Current.SnapshotComplete)
        {
        }

        var request = await RequestAsync(team, dave);
        Assert.True(await events.MoveNext());
        Assert.Equal((request.Id, "pending", 0), (events.Current.Request.Id, events.Current.Request.State, events.Current.Request.Approvals.Count));
        await ApproveAsync(request.Id, await LoginAsync(team.Ann));
        Assert.True(await events.MoveNext());

        Assert.Equal((request.Id, "pending", team.Ann), (events.Current.Request.Id, events.Current.Request.State, events.Current.Request.Approvals.Single().Entity));
    }

    [Fact]
    public async Task AnEarlyRevoke_EndsTheGrantAtOnce()
    {
        var team = await TeamAsync();
        var dave = await LoginAsync(team.Requester);
        var request = await RequestAsync(team, dave);
        await ApproveAsync(request.Id, await LoginAsync(team.Ann));
        await ApproveAsync(request.Id, await LoginAsync(team.Cat));
        Assert.True(await CanReadAsync(dave, team.Secret));

        var revoked = await Access.RevokeAsync(new RevokeAccessRequestRequest { Id = request.Id, Comment = "done" }, Vault.As(dave));

        Assert.Equal(("revoked", team.Requester), (revoked.State, revoked.ClosedBy));
        Assert.False(await CanReadAsync(dave, team.Secret));
        // Each step's entry names the request and who took it.
        var steps = (await new AuditService.AuditServiceClient(Vault.Channel).TailAsync(new TailAuditRequest { PathPrefix = $"access/request/{request.Id}", Limit = 10 }, Vault.As())).Entries;
        Assert.Equal(
            [("AccessService/Approve", team.Ann), ("AccessService/Approve", team.Cat), ("AccessService/Revoke", team.Requester)],
            steps.Select(e => (e.Rpc["vault.v1.".Length..], e.Entity)));
    }

    [Fact]
    public async Task ADenial_ClosesTheRequest_AndSomeoneOutsideTheGroupCannotAnswer()
    {
        var team = await TeamAsync();
        var dave = await LoginAsync(team.Requester);
        var request = await RequestAsync(team, dave);
        var outsider = await LoginAsync(await UserAsync("eve"));

        var refused = await Rpc.FailsWith(StatusCode.PermissionDenied, () => ApproveAsync(request.Id, outsider));
        Assert.Contains("only members of group", refused.Status.Detail, StringComparison.Ordinal);
        using var events = await WatchAccessEventsAsync();
        var denied = await Access.DenyAsync(new DenyAccessRequestRequest { Id = request.Id, Comment = "use the read replica" }, Vault.As(await LoginAsync(team.Cat)));
        var deniedEvent = await events.NextAsync();

        Assert.Equal(("denied", team.Cat, "use the read replica"), (denied.State, denied.ClosedBy, denied.Comment));
        Assert.Equal(("access.request_denied", request.Id, team.Cat), (deniedEvent.Type, deniedEvent.Attributes["request_id"], deniedEvent.Attributes["by"]));
        // Comments and reasons are free text, never in an event.
        Assert.DoesNotContain("read replica", deniedEvent.ToString(), StringComparison.Ordinal);
        var ben = await LoginAsync(team.Ben);
        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => ApproveAsync(request.Id, ben));
        Assert.False(await CanReadAsync(dave, team.Secret));
    }

    [Fact]
    public async Task AnUnansweredRequest_Expires()
    {
        var team = await TeamAsync(g => g.RequestTtl = Duration.FromTimeSpan(TimeSpan.FromMinutes(10)));
        var request = await RequestAsync(team, await LoginAsync(team.Requester));

        var ben = await LoginAsync(team.Ben);

        fixture.Clock.Advance(TimeSpan.FromMinutes(10));

        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => ApproveAsync(request.Id, ben));
        await WaitForStateAsync(request.Id, "expired");
    }

    [Fact]
    public async Task BreakGlass_NeedsMfaAndAReason_IsActiveAtOnce_AndRaisesItsOwnAuditEvent()
    {
        var team = await TeamAsync(g =>
        {
            g.Emergency = true;
            g.ApprovalsRequired = 0;
            g.ApproverGroup = "";
            g.MaxDuration = Duration.FromTimeSpan(TimeSpan.FromMinutes(30));
        });
        var dave = await LoginAsync(team.Requester);
        var mfa = new MfaService.MfaServiceClient(Vault.Channel);
        var required = await Rpc.FailsWith(StatusCode.FailedPrecondition, () => RequestAsync(team, dave));
        Assert.StartsWith("mfa required", required.Status.Detail, StringComparison.Ordinal);
        var uri = (await mfa.EnrollAsync(new EnrollMfaRequest(), Vault.As(dave))).OtpauthUri;
        await mfa.ValidateAsync(new ValidateMfaRequest { Code = Otp.Code(uri, fixture.Clock.GetUtcNow()) }, Vault.As(dave));
        var noReason = await Rpc.FailsWith(StatusCode.InvalidArgument, () => Access.CreateRequestAsync(new CreateAccessRequestRequest { Grant = team.Grant }, Vault.As(dave)).ResponseAsync);
        Assert.StartsWith("reason:", noReason.Status.Detail, StringComparison.Ordinal);

        using var events = await WatchAccessEventsAsync();
        var glass = await RequestAsync(team, dave);
        var glassEvent = await events.NextAsync();

        Assert.Equal(("active", true), (glass.State, glass.Emergency));
        Assert.Equal(("access.break_glass", glass.Id, team.Requester, team.Grant), (glassEvent.Type, glassEvent.Attributes["request_id"], glassEvent.Attributes["requester"], glassEvent.Attributes["grant"]));
        Assert.DoesNotContain("INC-4242", glassEvent.ToString(), StringComparison.Ordinal);
        Assert.True(await CanReadAsync(dave, team.Secret));
        var entries = (await new AuditService.AuditServiceClient(Vault.Channel).TailAsync(new TailAuditRequest { Rpc = "AccessService/CreateRequest", Limit = 1 }, Vault.As())).Entries;
        Assert.Equal(("break-glass", team.Requester, "ok"), (entries.Single().Event, entries.Single().Entity, entries.Single().Outcome));
        var tooLong = await Rpc.FailsWith(StatusCode.InvalidArgument, () => Access.PutGrantAsync(new PutGrantRequest
        {
            Grant = new Grant { Name = team.Grant, Policies = { glass.Policies }, Emergency = true, MaxDuration = Duration.FromTimeSpan(TimeSpan.FromHours(2)) },
        }, Vault.As()).ResponseAsync);
        Assert.StartsWith("grant.max_duration:", tooLong.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadInput_IsInvalidArgumentNamingTheField_AndChangesNothing()
    {
        var team = await TeamAsync();
        var dave = await LoginAsync(team.Requester);
        async Task Refused(string field, Func<Task> call)
        {
            var ex = await Rpc.FailsWith(StatusCode.InvalidArgument, call);
            Assert.StartsWith(field + ":", ex.Status.Detail, StringComparison.Ordinal);
        }

        await Refused("duration", () => RequestAsync(team, dave, TimeSpan.FromHours(2)));
        await Refused("grant.approvals_required", () => Access.PutGrantAsync(new PutGrantRequest { Grant = new Grant { Name = "g-" + team.Grant, Policies = { "root" }, ApproverGroup = "x", ApprovalsRequired = 0 } }, Vault.As()).ResponseAsync);
        await Refused("grant.approver_group", () => Access.PutGrantAsync(new PutGrantRequest { Grant = new Grant { Name = "g-" + team.Grant, Policies = { "root" }, ApproverGroup = "no-such-group", ApprovalsRequired = 1 } }, Vault.As()).ResponseAsync);
        await Refused("grant.policies", () => Access.PutGrantAsync(new PutGrantRequest { Grant = new Grant { Name = "g-" + team.Grant, ApprovalsRequired = 1 } }, Vault.As()).ResponseAsync);
        await Refused("id", () => Access.ApproveAsync(new ApproveAccessRequestRequest { Id = "not-a-request" }, Vault.As(dave)).ResponseAsync);

        await Rpc.FailsWith(StatusCode.NotFound, () => Access.GetGrantAsync(new GetGrantRequest { Name = "g-" + team.Grant }, Vault.As()).ResponseAsync);
        Assert.DoesNotContain((await Access.ListRequestsAsync(new ListAccessRequestsRequest(), Vault.As())).Requests, r => r.Grant == team.Grant);
    }
}
