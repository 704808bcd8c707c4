using System.Net;
using System.Net.Sockets;
using Vault.Protocol.V1;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Rotation;

/// <summary>
/// A target whose system was never reached (nothing listens on the port, the host name does not
/// resolve): the password change was never sent, so the rotation fails cleanly — the pending
/// password is dropped, the current one kept, and the target can be deleted without force.
/// </summary>
public sealed class UnreachableTargetTests(SharedVault fixture) : IClassFixture<SharedVault>
{
    private TestVault Vault => fixture.Vault;

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var kind in new[] { "postgres", "mysql", "ldap" })
        {
            data.Add(kind, "closed-port");
            data.Add(kind, "unresolvable-host");
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Rotate_WhenTheSystemWasNeverReached_FailsCleanly_KeepsTheCurrentPassword_AndTheTargetDeletesWithoutForce(string kind, string where)
    {
        var targets = Vault.Targets();
        var admin = $"admin/{Guid.NewGuid():N}";
        await Vault.Kv.PutAsync(new PutSecretRequest { Path = admin, Data = { ["username"] = kind == "ldap" ? "cn=admin,dc=vault,dc=test" : "vault_admin", ["password"] = "admin-password" } }, Vault.As());
        var name = RotationKit.UniqueName($"never-{kind}");
        var connection = where == "closed-port"
            ? new TargetConnection { Host = "127.0.0.1", Port = (uint)ClosedPort() }
            : new TargetConnection { Host = $"vault-{Guid.NewGuid():N}.invalid", Port = 5 };
        if (kind == "ldap")
        {
            connection.Database = "dc=vault,dc=test";
        }
        var account = kind == "ldap" ? "uid=app,ou=people,dc=vault,dc=test" : "app";
        var initial = $"Initial-{Guid.NewGuid():N}";
        var target = new Target { Name = name, Kind = kind, Connection = connection, Account = account, AdminSecret = admin };
        await targets.PutTargetAsync(new PutTargetRequest { Target = target, CurrentPassword = initial, SkipVerification = true }, Vault.As());

        var result = await targets.RotateTargetAsync(new RotateTargetRequest { Name = name }, Vault.As());

        Assert.Equal(RotationOutcome.Failed, result.Event.Outcome);
        Assert.Equal("set", result.Event.Step);
        Assert.Contains("unreachable", result.Event.Reason, StringComparison.Ordinal);
        Assert.Contains("nothing was sent", result.Event.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain("admin-password", result.Event.Reason, StringComparison.Ordinal);
        // Not stuck: no pending password, a retry is planned, the current password is the one held.
        Assert.Equal("", result.Target.Status.PendingStep);
        Assert.Equal(TargetState.Retrying, result.Target.Status.State);
        var held = await targets.GetTargetCredentialAsync(new GetTargetCredentialRequest { Name = name }, Vault.As());
        Assert.Equal(initial, held.Password);

        await targets.DeleteTargetAsync(new DeleteTargetRequest { Name = name }, Vault.As());
        var listed = await targets.ListTargetsAsync(new ListTargetsRequest(), Vault.As());
        Assert.DoesNotContain(listed.Targets, t => t.Name == name);
    }

    /// <summary>A loopback port nothing listens on: bound, then released.</summary>
    internal static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
