using Grpc.Core;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Identity;

/// <summary>
/// A person's token holds the policies of their login, their entity and their groups as they are
/// at each request: joining or leaving a group, disabling or deleting the entity takes effect on
/// the next request, and every audit entry of the token names the person.
/// </summary>
public sealed class EntityTests(ClockedVault fixture) : IClassFixture<ClockedVault>
{
    private const string Password = "a long passphrase for bob";

    private TestVault Vault => fixture.Vault;

    private IdentityService.IdentityServiceClient Identity => new(Vault.Channel);

    private UserpassService.UserpassServiceClient Users => new(Vault.Channel);

    /// <summary>A policy reading kv/&lt;name&gt;/*, with a secret there; returns its name.</summary>
    private async Task<string> ReadablePathAsync(string tag)
    {
        var name = $"{tag}-{Guid.NewGuid():N}"[..24];
        await Vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = name, Rules = { new PolicyRule { Path = $"kv/{name}/*", Capabilities = { "read" } } } } }, Vault.As());
        await Vault.Kv.PutAsync(new PutSecretRequest { Path = $"{name}/s", Data = { ["v"] = tag } }, Vault.As());
        return name;
    }

    private async Task<bool> CanReadAsync(string token, string policy)
    {
        try
        {
            await Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{policy}/s" }, Vault.As(token));
            return true;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.PermissionDenied)
        {
            return false;
        }
    }

    /// <summary>A user (and so an entity) with no policies of its own, logged in.</summary>
    private async Task<(string Name, string Token)> PersonAsync()
    {
        var name = $"person-{Guid.NewGuid():N}"[..24];
        await Users.PutUserAsync(new PutUserRequest { User = new User { Name = name }, Password = Password }, Vault.As());
        var login = await Users.LoginAsync(new UserpassLoginRequest { Username = name, Password = Password });
        return (name, login.Token);
    }

    [Fact]
    public async Task APersonsToken_HoldsTheEntitysAndItsGroupsPolicies_AsTheyAreAtEachRequest()
    {
        var (name, token) = await PersonAsync();
        var own = await ReadablePathAsync("own");
        var team = await ReadablePathAsync("team");
        Assert.False(await CanReadAsync(token, own));

        await Identity.PutEntityAsync(new PutEntityRequest { Entity = new Entity { Name = name, Policies = { own } } }, Vault.As());
        Assert.True(await CanReadAsync(token, own));
        Assert.False(await CanReadAsync(token, team));

        var group = $"group-{Guid.NewGuid():N}";
        await Identity.PutGroupAsync(new PutGroupRequest { Group = new Group { Name = group, Policies = { team }, Members = { name } } }, Vault.As());
        Assert.True(await CanReadAsync(token, team));
        Assert.Equal([group], (await Identity.GetEntityAsync(new GetEntityRequest { Name = name }, Vault.As())).Groups);

        await Identity.PutGroupAsync(new PutGroupRequest { Group = new Group { Name = group, Policies = { team } } }, Vault.As());
        Assert.False(await CanReadAsync(token, team));
        Assert.True(await CanReadAsync(token, own));
        Assert.Empty((await Identity.GetEntityAsync(new GetEntityRequest { Name = name }, Vault.As())).Groups);
    }

    [Fact]
    public async Task DeletingAGroup_TakesItsPoliciesFromItsMembers()
    {
        var (name, token) = await PersonAsync();
        var team = await ReadablePathAsync("team");
        var group = $"group-{Guid.NewGuid():N}";
        await Identity.PutGroupAsync(new PutGroupRequest { Group = new Group { Name = group, Policies = { team }, Members = { name } } }, Vault.As());
        Assert.True(await CanReadAsync(token, team));

        await Identity.DeleteGroupAsync(new DeleteGroupRequest { Name = group }, Vault.As());

        Assert.False(await CanReadAsync(token, team));
        Assert.Empty((await Identity.GetEntityAsync(new GetEntityRequest { Name = name }, Vault.As())).Groups);
        Assert.DoesNotContain(group, (await Identity.ListGroupsAsync(new ListGroupsRequest(), Vault.As())).Names);
    }

    [Fact]
    public async Task ADisabledEntity_HasItsTokensAndLoginsRefused_UntilEnabledAgain()
    {
        var (name, token) = await PersonAsync();

        await Identity.PutEntityAsync(new PutEntityRequest { Entity = new Entity { Name = name, Disabled = true } }, Vault.As());

        await Rpc.FailsWith(StatusCode.Unauthenticated, () => Vault.Tokens.LookupAsync(new LookupTokenRequest(), Vault.As(token)).ResponseAsync);
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => Users.LoginAsync(new UserpassLoginRequest { Username = name, Password = Password }).ResponseAsync);
        await Identity.PutEntityAsync(new PutEntityRequest { Entity = new Entity { Name = name } }, Vault.As());
        await Vault.Tokens.LookupAsync(new LookupTokenRequest(), Vault.As(token));
    }

    [Fact]
    public async Task ADeletedEntity_KillsItsTokens_EvenOnceItsNameIsUsedAgain()
    {
        var (name, token) = await PersonAsync();
        var own = await ReadablePathAsync("own");
        var mint = $"mint-{Guid.NewGuid():N}";
        await Vault.Policies.PutAsync(new PutPolicyRequest { Policy = new Policy { Name = mint, Rules = { new PolicyRule { Path = "auth/token/create", Capabilities = { "create" } } } } }, Vault.As());
        await Identity.PutEntityAsync(new PutEntityRequest { Entity = new Entity { Name = name, Policies = { mint } } }, Vault.As());
        var child = await Vault.Tokens.CreateAsync(new CreateTokenRequest(), Vault.As(token));
        Assert.Equal(name, child.Info.Entity);

        await Identity.DeleteEntityAsync(new DeleteEntityRequest { Name = name }, Vault.As());
        await Identity.PutEntityAsync(new PutEntityRequest { Entity = new Entity { Name = name, Policies = { own } } }, Vault.As());

        await Rpc.FailsWith(StatusCode.Unauthenticated, () => Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{own}/s" }, Vault.As(token)).ResponseAsync);
        await Rpc.FailsWith(StatusCode.Unauthenticated, () => Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{own}/s" }, Vault.As(child.Token)).ResponseAsync);
        // The user's login now issues tokens for the new entity of that name.
        var again = await Users.LoginAsync(new UserpassLoginRequest { Username = name, Password = Password });
        Assert.True(await CanReadAsync(again.Token, own));
    }

    [Fact]
    public async Task EveryAuditEntryOfAPersonsToken_NamesThePerson_AndAProgramsNone()
    {
        var (name, token) = await PersonAsync();
        var own = await ReadablePathAsync("own");
        await Identity.PutEntityAsync(new PutEntityRequest { Entity = new Entity { Name = name, Policies = { own } } }, Vault.As());
        var id = (await Identity.GetEntityAsync(new GetEntityRequest { Name = name }, Vault.As())).Id;

        await Vault.Kv.GetAsync(new GetSecretRequest { Path = $"{own}/s" }, Vault.As(token));
        await Rpc.FailsWith(StatusCode.PermissionDenied, () => Vault.Kv.PutAsync(new PutSecretRequest { Path = $"{own}/s", Data = { ["v"] = "x" } }, Vault.As(token)).ResponseAsync);

        var entries = (await new AuditService.AuditServiceClient(Vault.Channel).TailAsync(new TailAuditRequest { PathPrefix = $"kv/{own}/", Limit = 1000 }, Vault.As())).Entries;
        Assert.Contains(entries, e => e.Rpc.EndsWith("KvService/Get", StringComparison.Ordinal) && e.Outcome == "ok" && e.Entity == name && e.EntityId == id);
        Assert.Contains(entries, e => e.Rpc.EndsWith("KvService/Put", StringComparison.Ordinal) && e.ErrorCode == "PermissionDenied" && e.Entity == name && e.EntityId == id);
        // The root token's writes (the seeding) are a program's: no person.
        Assert.Contains(entries, e => e.Rpc.EndsWith("KvService/Put", StringComparison.Ordinal) && e.Outcome == "ok" && e.Entity == "");
        var verdict = await new AuditService.AuditServiceClient(Vault.Channel).VerifyAsync(new VerifyAuditRequest(), Vault.As());
        Assert.True(verdict.Ok, verdict.Reason);
    }

    [Fact]
    public async Task BadInput_IsInvalidArgumentNamingTheField_AndChangesNothing()
    {
        var (person, _) = await PersonAsync();
        var group = $"group-{Guid.NewGuid():N}";
        async Task Refused(string field, Func<Task> call)
        {
            var ex = await Rpc.FailsWith(StatusCode.InvalidArgument, call);
            Assert.StartsWith(field + ":", ex.Status.Detail, StringComparison.Ordinal);
        }

        await Refused("group.members[1]", () => Identity.PutGroupAsync(new PutGroupRequest { Group = new Group { Name = group, Members = { person, "no-such-entity" } } }, Vault.As()).ResponseAsync);
        await Refused("group.policies[0]", () => Identity.PutGroupAsync(new PutGroupRequest { Group = new Group { Name = group, Policies = { "no-such-policy" } } }, Vault.As()).ResponseAsync);
        await Refused("group.name", () => Identity.PutGroupAsync(new PutGroupRequest { Group = new Group { Name = "bad name" } }, Vault.As()).ResponseAsync);
        await Refused("entity.name", () => Identity.PutEntityAsync(new PutEntityRequest { Entity = new Entity { Name = "" } }, Vault.As()).ResponseAsync);
        await Refused("entity.name", () => Identity.PutEntityAsync(new PutEntityRequest(), Vault.As()).ResponseAsync);

        await Rpc.FailsWith(StatusCode.NotFound, () => Identity.GetGroupAsync(new GetGroupRequest { Name = group }, Vault.As()).ResponseAsync);
        Assert.Empty((await Identity.GetEntityAsync(new GetEntityRequest { Name = person }, Vault.As())).Groups);
    }
}
