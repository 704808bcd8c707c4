using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Identity;

/// <summary>
/// A person logs in with a username and password and gets a token for their entity; wrong
/// passwords count towards a lockout that doubles each time, survives a restart and ends when an
/// admin unlocks the user. The vault's clock is a fake one the tests move.
/// </summary>
public sealed class UserpassTests(ClockedVault fixture) : IClassFixture<ClockedVault>
{
    private const string Password = "a long passphrase for alice";

    private TestVault Vault => fixture.Vault;

    private UserpassService.UserpassServiceClient Users => new(Vault.Channel);

    private AuditService.AuditServiceClient Audit => new(Vault.Channel);

    /// <summary>A new user with a policy that reads kv/&lt;name&gt;/*, and a secret there.</summary>
    private async Task<string> UserAsync(string password = Password)
    {
        var name = $"user-{Guid.NewGuid():N}"[..24];
        await Vault.Policies.PutAsync(new PutPolicyRequest { Policy = RpcPolicy(name, $"kv/{name}/*", "read") }, Vault.As());
        await Vault.Kv.PutAsync(new PutSecretRequest { Path = $"{name}/db", Data = { ["password"] = "for-the-person" } }, Vault.As());
        await Users.PutUserAsync(new PutUserRequest { User = new User { Name = name, Policies = { name } }, Password = password }, Vault.As());
        return name;
    }

    private static Policy RpcPolicy(string name, string path, params string[] capabilities) =>
        new() { Name = name, Rules = { new PolicyRule { Path = path, Capabilities = { capabilities } } } };

    private Task<UserpassLoginResponse> LoginAsync(string name, string password = Password) =>
        Users.LoginAsync(new UserpassLoginRequest { Username = name, Password = password }).ResponseAsync;

    private async Task FailLoginsAsync(string name, int times)
    {
        for (var i = 0; i < times; i++)
        {
            await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync(name, $"wrong password {i}"));
        }
    }

    [Fact]
    public async Task Login_WithTheRightPassword_GivesATokenForTheUsersEntity_ThatReadsWhatItsPolicyAllows()
    {
        var name = await UserAsync();

        var login = await LoginAsync(name);

        Assert.Equal(name, login.Info.Entity);
        Assert.Equal($"userpass-{name}", login.Info.DisplayName);
        Assert.Equal("for-the-person", (await Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{name}/db" }, Vault.As(login.Token))).Data["password"]);
        await Rpc.FailsWith(StatusCode.PermissionDenied, () => Vault.Kv.PutAsync(new PutSecretRequest { Path = $"{name}/db", Data = { ["x"] = "y" } }, Vault.As(login.Token)));
        // The user's entity was created with the user, and the token's lookup says whose it is.
        var entity = await new IdentityService.IdentityServiceClient(Vault.Channel).GetEntityAsync(new GetEntityRequest { Name = name }, Vault.As());
        Assert.StartsWith("ve_", entity.Id, StringComparison.Ordinal);
        Assert.Equal(name, (await Vault.Tokens.LookupAsync(new LookupTokenRequest(), Vault.As(login.Token))).Entity);
    }

    [Fact]
    public async Task AWrongPassword_AndAnUnknownUser_AreRefusedAlike_AndAuditedWithoutThePassword()
    {
        var name = await UserAsync();

        var wrong = await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync(name, "not the password at all"));
        var unknown = await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync("nobody-" + name, "not the password at all"));

        Assert.Equal(wrong.Status.Detail, unknown.Status.Detail);
        // The entries name the user's entity, never the username as typed (it may be a password
        // typed into the wrong field), and never the password.
        var entries = (await Audit.TailAsync(new TailAuditRequest { Rpc = "UserpassService/Login", Limit = 2 }, Vault.As())).Entries;
        Assert.Equal(2, entries.Count);
        Assert.All(entries, e => Assert.Equal(("auth/userpass/login", "error", "Unauthenticated", ""), (e.Path, e.Outcome, e.ErrorCode, e.CredentialHmac)));
        Assert.Equal([name, ""], entries.Select(e => e.Entity));
        DataDirectoryScan.AssertNoneAppear(Vault.DataDir, [Password, "not the password at all", "nobody-" + name]);
    }

    [Fact]
    public async Task FiveWrongPasswords_LockTheUserOut_EvenTheRightOneIsRefused_AcrossARestart_UntilAnAdminUnlocks()
    {
        var name = await UserAsync();
        await FailLoginsAsync(name, 4);
        Assert.Equal(4u, (await Users.GetUserAsync(new GetUserRequest { Name = name }, Vault.As())).FailedLogins);

        await FailLoginsAsync(name, 1);

        var user = await Users.GetUserAsync(new GetUserRequest { Name = name }, Vault.As());
        Assert.Equal(1u, user.Lockouts);
        Assert.Equal(fixture.Clock.GetUtcNow() + TimeSpan.FromMinutes(1), user.LockedUntil.ToDateTimeOffset(), TimeSpan.FromSeconds(1));
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync(name));
        var locked = (await Audit.TailAsync(new TailAuditRequest { Rpc = "UserpassService/Login", Limit = 1000 }, Vault.As())).Entries
            .Where(e => e.Entity == name && e.Event == "user-locked").ToList();
        Assert.Single(locked);

        await Vault.RestartAsync();
        await Vault.UnsealAsync();
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync(name));

        await Users.UnlockUserAsync(new UnlockUserRequest { Name = name }, Vault.As());
        Assert.Equal(name, (await LoginAsync(name)).Info.Entity);
        user = await Users.GetUserAsync(new GetUserRequest { Name = name }, Vault.As());
        Assert.Null(user.LockedUntil);
        Assert.Equal(0u, user.Lockouts);
    }

    [Fact]
    public async Task EachLockoutInARow_LastsTwiceAsLong_AndEndsOnTime()
    {
        var name = await UserAsync();
        await FailLoginsAsync(name, 5);
        fixture.Clock.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1));

        await FailLoginsAsync(name, 5);

        var user = await Users.GetUserAsync(new GetUserRequest { Name = name }, Vault.As());
        Assert.Equal(2u, user.Lockouts);
        Assert.Equal(fixture.Clock.GetUtcNow() + TimeSpan.FromMinutes(2), user.LockedUntil.ToDateTimeOffset(), TimeSpan.FromSeconds(1));
        fixture.Clock.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(30));
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync(name));
        fixture.Clock.Advance(TimeSpan.FromSeconds(31));
        await LoginAsync(name);
        Assert.Equal(0u, (await Users.GetUserAsync(new GetUserRequest { Name = name }, Vault.As())).Lockouts);
    }

    [Fact]
    public async Task ChangingThePassword_NeedsTheCurrentOne_AndAWrongOneCountsTowardsTheLockout()
    {
        var name = await UserAsync();

        await Rpc.FailsWith(StatusCode.Unauthenticated, () => Users.ChangePasswordAsync(new ChangePasswordRequest { Username = name, CurrentPassword = "a wrong current one", NewPassword = "the next long password" }).ResponseAsync);
        Assert.Equal(1u, (await Users.GetUserAsync(new GetUserRequest { Name = name }, Vault.As())).FailedLogins);

        await Users.ChangePasswordAsync(new ChangePasswordRequest { Username = name, CurrentPassword = Password, NewPassword = "the next long password" });

        await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync(name));
        await LoginAsync(name, "the next long password");
        Assert.Equal(0u, (await Users.GetUserAsync(new GetUserRequest { Name = name }, Vault.As())).FailedLogins);
    }

    [Fact]
    public async Task AnAdminsNewPassword_ReplacesTheOld_AndEndsALockout()
    {
        var name = await UserAsync();
        await FailLoginsAsync(name, 5);

        await Users.PutUserAsync(new PutUserRequest { User = new User { Name = name, Policies = { name } }, Password = "reset by the admin" }, Vault.As());

        await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync(name));
        await LoginAsync(name, "reset by the admin");
    }

    [Fact]
    public async Task BadInput_IsInvalidArgumentNamingTheField_AndChangesNothing()
    {
        var name = $"bad-{Guid.NewGuid():N}";
        async Task Refused(string field, Func<Task> call)
        {
            var ex = await Rpc.FailsWith(StatusCode.InvalidArgument, call);
            Assert.StartsWith(field + ":", ex.Status.Detail, StringComparison.Ordinal);
        }

        await Refused("password", () => Users.PutUserAsync(new PutUserRequest { User = new User { Name = name } }, Vault.As()).ResponseAsync);
        await Refused("password", () => Users.PutUserAsync(new PutUserRequest { User = new User { Name = name }, Password = "short" }, Vault.As()).ResponseAsync);
        await Refused("user.name", () => Users.PutUserAsync(new PutUserRequest { User = new User { Name = "has space" }, Password = Password }, Vault.As()).ResponseAsync);
        await Refused("user.policies[0]", () => Users.PutUserAsync(new PutUserRequest { User = new User { Name = name, Policies = { "no-such-policy" } }, Password = Password }, Vault.As()).ResponseAsync);
        await Refused("user.entity", () => Users.PutUserAsync(new PutUserRequest { User = new User { Name = name, Entity = "bad/entity" }, Password = Password }, Vault.As()).ResponseAsync);
        await Refused("user.name", () => Users.PutUserAsync(new PutUserRequest(), Vault.As()).ResponseAsync);
        await Refused("username", () => LoginAsync("", Password));
        await Refused("password", () => LoginAsync(name, ""));
        await Refused("new_password", () => Users.ChangePasswordAsync(new ChangePasswordRequest { Username = name, CurrentPassword = Password, NewPassword = "short" }).ResponseAsync);

        await Rpc.FailsWith(StatusCode.NotFound, () => Users.GetUserAsync(new GetUserRequest { Name = name }, Vault.As()).ResponseAsync);
        await Rpc.FailsWith(StatusCode.NotFound, () => new IdentityService.IdentityServiceClient(Vault.Channel).GetEntityAsync(new GetEntityRequest { Name = name }, Vault.As()).ResponseAsync);
    }

    [Fact]
    public async Task DeletingAUser_EndsTheirLogins_ButKeepsTheirEntity()
    {
        var name = await UserAsync();
        Assert.Contains(name, (await Users.ListUsersAsync(new ListUsersRequest(), Vault.As())).Names);

        await Users.DeleteUserAsync(new DeleteUserRequest { Name = name }, Vault.As());

        await Rpc.FailsWith(StatusCode.Unauthenticated, () => LoginAsync(name));
        Assert.DoesNotContain(name, (await Users.ListUsersAsync(new ListUsersRequest(), Vault.As())).Names);
        await new IdentityService.IdentityServiceClient(Vault.Channel).GetEntityAsync(new GetEntityRequest { Name = name }, Vault.As());
    }
}
