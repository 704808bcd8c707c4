using System.Reflection;
using Vault.Server.Auth;
using Vault.Server.Grpc;
using Vault.Tests.Infrastructure;

namespace Vault.Tests.Security;

/// <summary>
/// Authorisation has one place: the interceptor checks what <see cref="AccessRules"/> says an RPC
/// needs. A service (or anything else) that asks the caller's policies itself is a second place
/// the matrix test does not read, so no method outside the interceptor may call
/// <see cref="Acl.Allows"/>.
/// </summary>
public sealed class AuthorizationArchitectureTests
{
    private static readonly MethodInfo Allows = typeof(Acl).GetMethod(nameof(Acl.Allows))!;

    [Fact]
    public void OnlyTheInterceptor_AsksWhetherAPolicyAllowsSomething()
    {
        var callers = IlScan.Callers(typeof(VaultInterceptor).Assembly, Allows)
            .Where(m => IlScan.Outermost(m.DeclaringType!) != typeof(VaultInterceptor))
            .Select(m => $"{m.DeclaringType!.FullName}.{m.Name}")
            .Distinct()
            .ToList();
        Assert.True(callers.Count == 0, $"Acl.Allows called outside the interceptor (put the access in AccessRules instead): {string.Join(", ", callers)}");
    }

    [Fact]
    public void TheScan_FindsTheInterceptorsOwnCall()
    {
        // The scan would pass vacuously if it could not see calls at all.
        Assert.Contains(IlScan.Callers(typeof(VaultInterceptor).Assembly, Allows), m => IlScan.Outermost(m.DeclaringType!) == typeof(VaultInterceptor));
    }
}
