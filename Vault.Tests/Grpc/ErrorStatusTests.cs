using System.Runtime.CompilerServices;
using Grpc.Core;
using Vault.Server;
using Vault.Server.Grpc;

namespace Vault.Tests.Grpc;

/// <summary>
/// Every domain error the server can raise is answered with its own status code and its message,
/// never the bare INTERNAL "internal error" a client can do nothing with. A full run once caught a
/// store that had stopped taking writes answering INTERNAL: its error was a plain IOException.
/// </summary>
public sealed class ErrorStatusTests
{
    private static List<Type> DomainErrorTypes() =>
        [.. typeof(VaultException).Assembly.GetTypes().Where(t => t.IsSubclassOf(typeof(VaultException)) && !t.IsAbstract).OrderBy(t => t.FullName, StringComparer.Ordinal)];

    public static TheoryData<string> DomainErrors() => new(DomainErrorTypes().Select(t => t.FullName!));

    [Theory]
    [MemberData(nameof(DomainErrors))]
    public void EachDomainError_HasItsOwnStatus_AndKeepsItsMessage(string typeName)
    {
        var type = typeof(VaultException).Assembly.GetType(typeName)!;
        var error = (Exception)RuntimeHelpers.GetUninitializedObject(type);

        var status = VaultInterceptor.StatusOf(error, requestCancelled: false);

        Assert.True(status.StatusCode is not (StatusCode.Internal or StatusCode.Unknown or StatusCode.OK), $"{type.Name} is answered {status.StatusCode}");
        Assert.Equal(error.Message, status.Detail);
    }

    [Fact]
    public void TheDomainErrors_AreFound()
    {
        // The theory above must not pass by finding none.
        var found = DomainErrorTypes();
        Assert.Contains(typeof(StorageFailedException), found);
        Assert.True(found.Count >= 10, $"{found.Count} domain errors");
    }

    [Fact]
    public void AnythingElse_IsInternal_WithNothingOfItsMessage()
    {
        var status = VaultInterceptor.StatusOf(new IOException("/var/lib/vault/secret-path: private detail"), requestCancelled: false);

        Assert.Equal(StatusCode.Internal, status.StatusCode);
        Assert.DoesNotContain("private", status.Detail, StringComparison.Ordinal);
    }
}
