using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Rotation;

/// <summary>Bad registrations get INVALID_ARGUMENT naming the field, and nothing is registered.</summary>
public sealed class TargetValidationTests(SharedVault fixture) : IClassFixture<SharedVault>
{
    private TestVault Vault => fixture.Vault;

    public static TheoryData<string, string> BadTargets() => new()
    {
        { "unknown-kind", "target.kind" },
        { "no-kind", "target.kind" },
        { "no-admin-secret", "target.admin_secret" },
        { "missing-admin-secret", "target.admin_secret" },
        { "admin-secret-without-password", "target.admin_secret" },
        { "invalid-cron", "target.schedule.cron" },
        { "cron-and-interval", "target.schedule" },
        { "unsatisfiable-policy", "target.password_policy.require_symbol" },
        { "weak-policy", "target.password_policy.length" },
        { "no-host", "target.connection.host" },
        { "port-65536", "target.connection.port" },
        { "port-max-uint", "target.connection.port" },
        { "mysql-port-70000", "target.connection.port" },
        { "ldap-port-70000", "target.connection.port" },
        { "no-account", "target.account" },
        { "second-account-without-alternating", "target.second_account" },
        { "alternating-without-second-account", "target.second_account" },
        { "half-a-window", "target.schedule.window_end" },
        { "bad-window", "target.schedule.window_start" },
        { "no-current-password", "current_password" },
        { "ldap-account-not-a-dn", "target.account" },
        { "bad-name", "target.name" },
        { "account-is-the-admin", "target.account" },
    };

    [Theory]
    [MemberData(nameof(BadTargets))]
    public async Task PutTarget_WithBadInput_IsInvalidArgumentNamingTheField_AndRegistersNothing(string variant, string field)
    {
        var targets = Vault.Targets();
        var admin = $"admin/{Guid.NewGuid():N}";
        await Vault.Kv.PutAsync(new PutSecretRequest { Path = admin, Data = { ["username"] = "admin", ["password"] = "admin-password" } }, Vault.As());
        var noPassword = $"admin/{Guid.NewGuid():N}";
        await Vault.Kv.PutAsync(new PutSecretRequest { Path = noPassword, Data = { ["username"] = "admin" } }, Vault.As());
        var name = RotationKit.UniqueName(variant.Length > 20 ? variant[..20] : variant);
        var target = new Target
        {
            Name = name,
            Kind = "postgres",
            Connection = new TargetConnection { Host = "127.0.0.1", Port = 9 },
            Account = "app",
            AdminSecret = admin,
        };
        var request = new PutTargetRequest { SkipVerification = true, Target = target, CurrentPassword = "current-password" };
        switch (variant)
        {
            case "unknown-kind": target.Kind = "oracle"; break;
            case "no-kind": target.Kind = ""; break;
            case "no-admin-secret": target.AdminSecret = ""; break;
            case "missing-admin-secret": target.AdminSecret = $"admin/{Guid.NewGuid():N}"; break;
            case "admin-secret-without-password": target.AdminSecret = noPassword; break;
            case "invalid-cron": target.Schedule = new Protocol.V1.RotationSchedule { Cron = "61 * * * *" }; break;
            case "cron-and-interval":
                target.Schedule = new Protocol.V1.RotationSchedule { Cron = "0 3 * * *", Interval = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromHours(1)) };
                break;
            case "unsatisfiable-policy": target.PasswordPolicy = new PasswordPolicy { Length = 32, Alphabet = "abcdefghijklmnopqrstuvwxyz0123456789", RequireSymbol = true }; break;
            case "weak-policy": target.PasswordPolicy = new PasswordPolicy { Length = 8, Alphabet = "0123456789" }; break;
            case "no-host": target.Connection.Host = ""; break;
            case "port-65536": target.Connection.Port = 65536; break;
            case "port-max-uint": target.Connection.Port = uint.MaxValue; break;
            case "mysql-port-70000": target.Kind = "mysql"; target.Connection.Port = 70000; break;
            case "ldap-port-70000": target.Kind = "ldap"; target.Connection.Database = "dc=vault,dc=test"; target.Account = "uid=app,dc=vault,dc=test"; target.Connection.Port = 70000; break;
            case "no-account": target.Account = ""; break;
            case "second-account-without-alternating": target.SecondAccount = "app2"; break;
            case "alternating-without-second-account": target.Strategy = RotationStrategy.AlternatingUsers; break;
            case "half-a-window": target.Schedule = new Protocol.V1.RotationSchedule { Interval = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromHours(1)), WindowStart = "01:00" }; break;
            case "bad-window": target.Schedule = new Protocol.V1.RotationSchedule { Interval = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromHours(1)), WindowStart = "25:00", WindowEnd = "03:00" }; break;
            case "no-current-password": request.CurrentPassword = ""; break;
            case "ldap-account-not-a-dn": target.Kind = "ldap"; target.Connection.Database = "dc=vault,dc=test"; target.Account = "just-a-name"; break;
            case "bad-name": target.Name = "no spaces/allowed"; break;
            case "account-is-the-admin": target.Account = "admin"; break;
            default: throw new ArgumentOutOfRangeException(nameof(variant));
        }

        var ex = await Assert.ThrowsAsync<RpcException>(async () => await targets.PutTargetAsync(request, Vault.As()));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.StartsWith(field + ":", ex.Status.Detail, StringComparison.Ordinal);
        var listed = await targets.ListTargetsAsync(new ListTargetsRequest(), Vault.As());
        Assert.DoesNotContain(listed.Targets, t => t.Name == name);
    }

    [Fact]
    public async Task PutTarget_WithoutReadOnTheAdminSecret_IsPermissionDenied()
    {
        var admin = $"admin/{Guid.NewGuid():N}";
        await Vault.Kv.PutAsync(new PutSecretRequest { Path = admin, Data = { ["username"] = "admin", ["password"] = "admin-password" } }, Vault.As());
        var policy = RotationKit.UniqueName("p");
        await Vault.Policies.PutAsync(new PutPolicyRequest
        {
            Policy = new Policy { Name = policy, Rules = { new PolicyRule { Path = "rotation/target/*", Capabilities = { "create", "update", "read" } } } },
        }, Vault.As());
        var token = (await Vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { policy } }, Vault.As())).Token;
        var name = RotationKit.UniqueName("perm");
        var target = new Target { Name = name, Kind = "postgres", Connection = new TargetConnection { Host = "127.0.0.1", Port = 9 }, Account = "app", AdminSecret = admin };

        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await Vault.Targets().PutTargetAsync(new PutTargetRequest { SkipVerification = true, Target = target, CurrentPassword = "pw-123456" }, Vault.As(token)));

        Assert.Equal(StatusCode.PermissionDenied, ex.StatusCode);
        Assert.Contains($"kv/{admin}", ex.Status.Detail, StringComparison.Ordinal);
        await Assert.ThrowsAsync<RpcException>(async () => await Vault.Targets().GetTargetAsync(new GetTargetRequest { Name = name }, Vault.As()));
    }

    [Fact]
    public async Task MovingATarget_NeedsReadOnItsCredentialAndOldAdminSecret_ElseItsPasswordsWouldGoToTheNewHost()
    {
        var admin = await AdminSecretAsync();
        var name = RotationKit.UniqueName("move");
        await Vault.Targets().PutTargetAsync(new PutTargetRequest { SkipVerification = true, Target = Unreachable(name, admin), CurrentPassword = "pw-of-the-app-1" }, Vault.As());
        // The caller may edit targets and owns an admin secret of its own, nothing more.
        var own = await AdminSecretAsync("mine");
        var token = await TokenAsync(("rotation/target/*", ["create", "update", "read"]), ($"kv/{own}", ["read"]));

        var moved = Unreachable(name, own);
        moved.Connection.Host = "127.0.0.2";
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await Vault.Targets().PutTargetAsync(new PutTargetRequest { SkipVerification = true, Target = moved, RotateNow = true }, Vault.As(token)));
        Assert.Equal(StatusCode.PermissionDenied, ex.StatusCode);
        // It may read the target's credential (rotation/target/*); what it lacks is the old admin credential.
        Assert.Contains($"read on 'kv/{admin}'", ex.Status.Detail, StringComparison.Ordinal);
        var unchanged = await Vault.Targets().GetTargetAsync(new GetTargetRequest { Name = name }, Vault.As());
        Assert.Equal("127.0.0.1", unchanged.Connection.Host);
        Assert.Equal(admin, unchanged.AdminSecret);

        // A change that does not move it (the schedule) is fine with update alone.
        var rescheduled = Unreachable(name, admin);
        rescheduled.Schedule = new Protocol.V1.RotationSchedule { Interval = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromDays(7)) };
        var token2 = await TokenAsync(("rotation/target/*", ["update"]), ($"kv/{admin}", ["read"]));
        var updated = await Vault.Targets().PutTargetAsync(new PutTargetRequest { SkipVerification = true, Target = rescheduled }, Vault.As(token2));
        Assert.Equal(TimeSpan.FromDays(7), updated.Schedule.Interval.ToTimeSpan());
    }

    [Fact]
    public async Task ManagingAnAdminSecret_NeedsUpdateOnIt_SinceTheVaultWillWriteIt()
    {
        var admin = $"admin/{Guid.NewGuid():N}";
        await Vault.Kv.PutAsync(new PutSecretRequest { Path = admin, Data = { ["username"] = "app", ["password"] = "admin-password" } }, Vault.As());
        var token = await TokenAsync(("rotation/target/*", ["create"]), ($"kv/{admin}", ["read"]));
        var target = Unreachable(RotationKit.UniqueName("mng"), admin);
        target.ManagesAdminSecret = true;

        var ex = await Assert.ThrowsAsync<RpcException>(async () => await Vault.Targets().PutTargetAsync(new PutTargetRequest { SkipVerification = true, Target = target }, Vault.As(token)));

        Assert.Equal(StatusCode.PermissionDenied, ex.StatusCode);
        Assert.Contains($"update on 'kv/{admin}'", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ListTargets_ShowsOnlyTheTargetsTheCallerMayRead()
    {
        var admin = await AdminSecretAsync();
        var mine = RotationKit.UniqueName("mine");
        var theirs = RotationKit.UniqueName("theirs");
        foreach (var name in new[] { mine, theirs })
        {
            await Vault.Targets().PutTargetAsync(new PutTargetRequest { SkipVerification = true, Target = Unreachable(name, admin), CurrentPassword = "pw-123456" }, Vault.As());
        }
        var token = await TokenAsync(("rotation/target", ["list"]), ($"rotation/target/{mine}", ["read"]));

        var listed = (await Vault.Targets().ListTargetsAsync(new ListTargetsRequest(), Vault.As(token))).Targets.Select(t => t.Name).ToList();

        Assert.Equal([mine], listed);
    }

    private async Task<string> AdminSecretAsync(string prefix = "admin")
    {
        var path = $"{prefix}/{Guid.NewGuid():N}";
        await Vault.Kv.PutAsync(new PutSecretRequest { Path = path, Data = { ["username"] = "vault_admin", ["password"] = "admin-password" } }, Vault.As());
        return path;
    }

    private static Target Unreachable(string name, string admin) =>
        new() { Name = name, Kind = "postgres", Connection = new TargetConnection { Host = "127.0.0.1", Port = 9 }, Account = "app", AdminSecret = admin };

    private async Task<string> TokenAsync(params (string Path, string[] Capabilities)[] rules)
    {
        var policy = new Policy { Name = RotationKit.UniqueName("p") };
        foreach (var (path, capabilities) in rules)
        {
            policy.Rules.Add(new PolicyRule { Path = path, Capabilities = { capabilities } });
        }
        await Vault.Policies.PutAsync(new PutPolicyRequest { Policy = policy }, Vault.As());
        return (await Vault.Tokens.CreateAsync(new CreateTokenRequest { Policies = { policy.Name } }, Vault.As())).Token;
    }

    [Fact]
    public async Task GetTarget_NeverReturnsAPassword()
    {
        var admin = $"admin/{Guid.NewGuid():N}";
        await Vault.Kv.PutAsync(new PutSecretRequest { Path = admin, Data = { ["username"] = "admin", ["password"] = "admin-password-x" } }, Vault.As());
        var name = RotationKit.UniqueName("nopw");
        var target = new Target { Name = name, Kind = "postgres", Connection = new TargetConnection { Host = "127.0.0.1", Port = 9 }, Account = "app", AdminSecret = admin };
        await Vault.Targets().PutTargetAsync(new PutTargetRequest { SkipVerification = true, Target = target, CurrentPassword = "current-password-y" }, Vault.As());

        var shown = (await Vault.Targets().GetTargetAsync(new GetTargetRequest { Name = name }, Vault.As())).ToString();
        var listed = (await Vault.Targets().ListTargetsAsync(new ListTargetsRequest(), Vault.As())).ToString();

        foreach (var text in new[] { shown, listed })
        {
            Assert.DoesNotContain("current-password-y", text, StringComparison.Ordinal);
            Assert.DoesNotContain("admin-password-x", text, StringComparison.Ordinal);
        }
    }
}
