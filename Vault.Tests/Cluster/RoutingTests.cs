using System.Reflection;
using Google.Protobuf.Reflection;
using Vault.Server.Cluster;

namespace Vault.Tests.Cluster;

/// <summary>
/// Which calls a standby serves itself and which it forwards to the active node, by method name
/// (<see cref="WriteForwarding.ServedHere"/>), pinned for every method of the protocol: a new
/// method whose name makes it "served here" shows up in this list, where a reviewer checks that
/// it writes nothing shared (on a standby such a write would be refused). And every call the client
/// sends again to another node as a read is one a standby serves itself.
/// </summary>
public sealed class RoutingTests
{
    private static IReadOnlyList<string> AllMethods() =>
        [.. typeof(Vault.Protocol.V1.KvService).Assembly.GetTypes()
            .Select(t => t.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static))
            .Where(p => p?.PropertyType == typeof(ServiceDescriptor))
            .SelectMany(p => ((ServiceDescriptor)p!.GetValue(null)!).Methods.Select(m => $"{m.Service.Name}/{m.Name}"))
            .Order(StringComparer.Ordinal)];

    [Fact]
    public void EveryMethodServedOnAStandby_IsOneOfThese()
    {
        var servedHere = AllMethods().Where(m => WriteForwarding.ServedHere(m[(m.IndexOf('/') + 1)..])).ToList();
        Assert.Equal(
        [
            "AccessService/GetGrant", "AccessService/GetRequest", "AccessService/ListGrants", "AccessService/ListRequests",
            "AppRoleService/GetRole", "AppRoleService/GetRoleId", "AppRoleService/ListRoles",
            "AuditService/Hash", "AuditService/Tail", "AuditService/Verify",
            "IdentityService/GetEntity", "IdentityService/GetGroup", "IdentityService/ListEntities", "IdentityService/ListGroups",
            "KvService/Get", "KvService/GetMetadata", "KvService/List",
            "LdapService/GetConfig",
            "LeaseService/GetCheckoutSet", "LeaseService/GetDynamicRole", "LeaseService/ListCheckoutSets", "LeaseService/ListDynamicRoles",
            "LeaseService/ListLeases", "LeaseService/LookupLease",
            "MfaService/GetMfa",
            "PolicyService/Get", "PolicyService/List",
            "SystemService/Seal", "SystemService/Status", "SystemService/Unseal",
            "TargetService/GetTarget", "TargetService/GetTargetCredential", "TargetService/ListTargetHistory", "TargetService/ListTargets",
            "TokenService/Lookup",
            "UserpassService/GetConfig", "UserpassService/GetUser", "UserpassService/ListUsers",
        ], servedHere);
    }

    [Fact]
    public void EveryCallTheClientRetriesAsARead_IsServedByTheNodeItReaches()
    {
        var methods = AllMethods();
        Assert.NotEmpty(methods);
        // The client's rule is internal to it: found by name, as the client library keeps it.
        var readsOnly = typeof(Vault.Client.VaultClient).Assembly.GetType("Vault.Client.Internal.FailoverInvoker", throwOnError: true)!
            .GetMethod("ReadsOnly", BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Static)!;
        foreach (var method in methods.Select(m => m[(m.IndexOf('/') + 1)..]))
        {
            if ((bool)readsOnly.Invoke(null, [method])!)
            {
                Assert.True(WriteForwarding.ServedHere(method), $"{method}: the client retries it as a read, but a standby forwards it");
            }
        }
    }

    [Fact]
    public void TheWritesTheClientRepeatsUnderAKey_AreExactlyTheOnesTheServerAnswersOncePerKey()
    {
        var methods = AllMethods().Select(m => "vault.v1." + m).ToHashSet(StringComparer.Ordinal);
        var keyed = (IReadOnlySet<string>)typeof(Vault.Client.VaultClient).Assembly.GetType("Vault.Client.Internal.FailoverInvoker", throwOnError: true)!
            .GetField("Keyed", BindingFlags.NonPublic | BindingFlags.Static)!.GetValue(null)!;

        Assert.Equal(Vault.Server.Idempotency.IdempotentWrites.Methods.Order(StringComparer.Ordinal), keyed.Select(m => m.TrimStart('/')).Order(StringComparer.Ordinal));
        Assert.All(Vault.Server.Idempotency.IdempotentWrites.Methods, m => Assert.Contains(m, methods));
        // A keyed write is forwarded to the active node, never served (and refused) on a standby.
        Assert.All(Vault.Server.Idempotency.IdempotentWrites.Methods, m => Assert.False(WriteForwarding.ServedHere(m[(m.IndexOf('/') + 1)..]), m));
    }
}
